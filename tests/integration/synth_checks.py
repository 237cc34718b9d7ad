"""Plain-polars recomputations used by the synth tests (independent of synthetic_gen)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lds_dask.contract.io import list_input_files, read_table_file
from lds_dask.contract.schemas import load_schema
from lds_dask.contract.validation import validate_frame


def read_all(out: Path, table: str) -> pl.DataFrame:
    """Every file of a table, concatenated in path (= time) order, as stored."""
    schema = load_schema(table)
    return pl.concat([read_table_file(f, schema) for f in list_input_files([out / table])])


def valid_records(out: Path) -> tuple[pl.DataFrame, dict]:
    result = validate_frame(read_all(out, "test_records"), "test_records")
    return result.valid, result.rule_counts


def recount(records: pl.DataFrame) -> pl.DataFrame:
    """The truth definitions, written out again with nothing but polars."""
    week = pl.col("specimen_date").dt.truncate("1w").alias("iso_week")
    tests = records.group_by("la_code", week).agg(
        tests=pl.len(), positive_tests=(pl.col("result") == "POSITIVE").sum()
    )
    out = tests
    for suffix, scope in (("", pl.col("test_type") == "PCR"), ("_all", pl.lit(True))):
        owned = (
            records.filter((pl.col("result") != "VOID") & scope)
            .with_columns(week)
            .sort("specimen_date", "test_id")
            .group_by("person_id", "iso_week")
            .agg(pl.col("la_code").first(), pos=(pl.col("result") == "POSITIVE").any())
            .group_by("la_code", "iso_week")
            .agg(
                pl.len().alias(f"people_tested{suffix}"),
                pl.col("pos").sum().alias(f"people_positive{suffix}"),
            )
        )
        out = out.join(owned, on=["la_code", "iso_week"], how="full", coalesce=True)
    return out.fill_null(0)
