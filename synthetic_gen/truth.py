"""Exact counts per LA x ISO week from clean records, by the cube's definitions.

``tests`` counts every clean test (VOID and both types) in the record's LA;
``positive_tests`` the POSITIVE ones. A person-week belongs to the LA of the person's
first non-VOID in-scope test that week (earliest specimen_date, ties by smallest
test_id); it is positive when the person has any POSITIVE in-scope test that week, in any
LA. Scope PCR gives ``people_tested``/``people_positive``; all test types give the
``_all`` variants.
"""

from __future__ import annotations

import polars as pl

from lds_dask.bands import iso_week

COUNT_COLUMNS = (
    "tests",
    "positive_tests",
    "people_tested",
    "people_positive",
    "people_tested_all",
    "people_positive_all",
)


def count_tests(records: pl.DataFrame) -> pl.DataFrame:
    """Tests and positive tests per la_code x iso_week."""
    return records.group_by("la_code", iso_week=iso_week("specimen_date")).agg(
        tests=pl.len(), positive_tests=(pl.col("result") == "POSITIVE").sum()
    )


def count_people(records: pl.DataFrame, pcr_only: bool) -> pl.DataFrame:
    """Owned person-weeks and positive person-weeks per la_code x iso_week."""
    valid = records.filter(pl.col("result") != "VOID")
    if pcr_only:
        valid = valid.filter(pl.col("test_type") == "PCR")
    weeks = (
        valid.with_columns(iso_week=iso_week("specimen_date"))
        .sort("specimen_date", "test_id")
        .group_by("person_id", "iso_week")
        .agg(pl.col("la_code").first(), is_positive=(pl.col("result") == "POSITIVE").any())
    )
    suffix = "" if pcr_only else "_all"
    return weeks.group_by("la_code", "iso_week").agg(
        pl.len().alias(f"people_tested{suffix}"),
        pl.col("is_positive").sum().alias(f"people_positive{suffix}"),
    )


def count_la_weeks(records: pl.DataFrame) -> pl.DataFrame:
    """All six truth counts per la_code x iso_week present in ``records``."""
    out = count_tests(records)
    for pcr_only in (True, False):
        out = out.join(
            count_people(records, pcr_only), on=["la_code", "iso_week"], how="full", coalesce=True
        )
    return out.with_columns(pl.col(c).fill_null(0).cast(pl.Int64) for c in COUNT_COLUMNS)


def complete_grid(partials: list[pl.DataFrame], la_codes: list[str], mondays) -> pl.DataFrame:
    """Sum chunk partials and fill every LA x week (zeros where nothing was tested)."""
    grid = pl.DataFrame({"la_code": la_codes}).join(
        pl.DataFrame({"iso_week": list(mondays)}, schema={"iso_week": pl.Date}), how="cross"
    )
    summed = (
        pl.concat(partials)
        .group_by("la_code", "iso_week")
        .agg(pl.col(c).sum() for c in COUNT_COLUMNS)
    )
    return (
        grid.join(summed, on=["la_code", "iso_week"], how="left")
        .with_columns(pl.col(c).fill_null(0).cast(pl.Int64) for c in COUNT_COLUMNS)
        .sort("la_code", "iso_week")
    )


def count_week_table(table: dict, mixed_test_ids, la_codes: pl.Series, monday) -> pl.DataFrame:
    """The same counts as :func:`count_la_weeks` for one week, on numeric columns.

    ``mixed_test_ids`` order exactly as the test_id strings do, so ties break the same way.
    Result codes: 0 POSITIVE, 1 NEGATIVE, 2 VOID; test_type 0 PCR, 1 LFD.
    """
    df = pl.DataFrame(
        {
            "la": table["la"],
            "day": table["day"],
            "tid": mixed_test_ids,
            "person": table["person"],
            "pos": table["result"] == 0,
            "valid": table["result"] != 2,
            "pcr": table["test_type"] == 0,
        }
    )
    out = df.group_by("la").agg(tests=pl.len(), positive_tests=pl.col("pos").sum())
    for suffix, scope in (("", pl.col("pcr")), ("_all", pl.lit(True))):
        owners = (
            df.filter(pl.col("valid") & scope)
            .sort("person", "day", "tid")
            .group_by("person")
            .agg(pl.col("la").first(), pl.col("pos").any())
        )
        people = owners.group_by("la").agg(
            pl.len().alias(f"people_tested{suffix}"),
            pl.col("pos").sum().alias(f"people_positive{suffix}"),
        )
        out = out.join(people, on="la", how="full", coalesce=True)
    return out.select(
        la_code=la_codes.gather(out["la"]),
        iso_week=pl.lit(monday),
        **{c: pl.col(c).fill_null(0).cast(pl.Int64) for c in COUNT_COLUMNS},
    )
