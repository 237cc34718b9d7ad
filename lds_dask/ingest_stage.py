"""Ingest stage 1, one task per input file: validate, quarantine, link, stage by LA bundle.

The valid rows are written to staging, one uncompressed Arrow IPC file per LA bundle:
staging is written once and read once, where parquet encoding cost ~3x more. Each staged
row keeps its ``file_index`` and ``valid_pos`` (position among the file's valid rows), the
key by which stage 2 drops cross-file duplicates (see :mod:`lds_dask.ingest_dedupe`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from lds_dask.ingest_dedupe import hash_ids, split_by_bucket
from lds_dask.ingest_plan import RECORDS, Source, TableSpec
from lds_dask.io import read_table_file
from lds_dask.link import derive_columns
from lds_dask.schemas import Field, load_schema, validate_frame

SOURCE_ROW = Field(
    "source_row",
    "int64",
    False,
    "Row number in the source file (1 = first data row).",
    "row number",
)


@dataclass(frozen=True)
class StageTask:
    """Inputs of :func:`stage_file` (the covariates come separately, shared by all tasks)."""

    source: Source
    run_dir: Path
    quarantine_dir: Path
    bundle_of: dict
    today: dt.date | None
    n_buckets: int


def stage_file(task: StageTask, covariates: pl.DataFrame) -> dict:
    """Validate one file, quarantine its rejects, stage its valid rows by LA bundle.

    Returns ``summary`` (counts, reasons, LAs: small, for the client) and ``buckets``
    (its test_id hashes by bucket, for the dedupe reductions; None without a unique key).
    """
    src = task.source
    result = validate_file(src, task.today)
    write_quarantine(
        result.rejected.with_columns(pl.col("source_row").cast(pl.Int64)),
        task.quarantine_dir / f"{src.quarantine_name}.parquet",
        src.path,
    )
    valid = derive_columns(
        result.valid, src.spec.date_col, covariates if src.spec == RECORDS else None
    ).with_columns(
        file_index=pl.lit(src.index, pl.Int32),
        valid_pos=pl.int_range(pl.len(), dtype=pl.UInt32),
    )
    write_staged(valid, task)
    unique = src.spec.unique_col
    return {
        "summary": {
            "index": src.index,
            "rows_in": result.rows_in,
            "valid": valid.height,
            "reasons": dict(result.rejected["reason"].value_counts().iter_rows()),
            "las": sorted(valid["la_code"].unique().to_list()),
        },
        "buckets": (
            split_by_bucket(hash_ids(valid[unique]), task.n_buckets, src.index) if unique else None
        ),
    }


def validate_file(src: Source, today: dt.date | None):
    """Read and validate one file; every row carries its 1-based ``source_row``."""
    schema = load_schema(src.spec.table)
    checked = dataclasses.replace(schema, fields=schema.fields + (SOURCE_ROW,))
    df = read_table_file(src.path, schema)
    df = df.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    return validate_frame(df, checked, today=today, source=str(src.path))


def write_staged(valid: pl.DataFrame, task: StageTask) -> None:
    """One uncompressed Arrow IPC file per LA bundle holding any of the valid rows."""
    bundles = pl.DataFrame(
        {"la_code": list(task.bundle_of), "bundle": list(task.bundle_of.values())},
        schema={"la_code": pl.String, "bundle": pl.Int32},
    )  # a join: replace_strict with a large mapping is ~50x slower in polars 2.1
    valid = valid.join(bundles, on="la_code", how="left", maintain_order="left")
    src = task.source
    for (bundle,), part in valid.partition_by("bundle", as_dict=True).items():
        out = stage_path(task.run_dir, src.spec, bundle, src.index)
        out.parent.mkdir(parents=True, exist_ok=True)
        part.drop("bundle").write_ipc(out, compression="uncompressed")


def stage_dir(run_dir: Path, spec: TableSpec, bundle: int) -> Path:
    """Staging folder of one LA bundle of one table."""
    return run_dir / "stage" / spec.subdir / f"b{bundle:04d}"


def stage_path(run_dir: Path, spec: TableSpec, bundle: int, index: int) -> Path:
    """Staged rows of one input file in one LA bundle."""
    return stage_dir(run_dir, spec, bundle) / f"f{index:06d}.arrow"


def write_quarantine(rejected: pl.DataFrame, path: Path, source: Path) -> None:
    """Rejected rows as text + reason + source_file + source_row; no file when none."""
    if rejected.height == 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rejected.with_columns(source_file=pl.lit(str(source))).sort("source_row").write_parquet(path)
