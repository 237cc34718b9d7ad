"""Planning an ingest run: the input files, their tables and status, and the LA bundles.

Every input file gets an index: its position when the files are sorted by path (records
first, then survey). The index orders duplicate test_ids (an earlier file's copy is kept)
and names staged files; LAs are grouped into bundles of roughly equal population, one
stage-2 task per bundle.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from lds_dask import refdata
from lds_dask.io import file_sha256, list_input_files
from lds_dask.schemas import SchemaError, TableSchema, check_columns, load_schema
from lds_dask.tasks import TaskRunner


@dataclass(frozen=True)
class TableSpec:
    """How one input table is stored: schema, store subdirectory, sort date, unique key."""

    table: str
    subdir: str
    date_col: str
    unique_col: str | None


RECORDS = TableSpec("test_records", "records", "specimen_date", "test_id")
SURVEY = TableSpec("survey_responses", "survey", "visit_date", None)


@dataclass(frozen=True)
class Source:
    """One input file planned for this run."""

    path: Path
    index: int
    spec: TableSpec
    sha256: str
    status: str  # new | changed | unchanged
    quarantine_name: str


def plan_inputs(raw_paths, survey) -> list[tuple[Path, TableSpec]]:
    """Every input file (sorted by path) with its table; checks existence and columns."""
    paths = [raw_paths] if isinstance(raw_paths, str | Path) else list(raw_paths)
    planned = [(p, RECORDS) for p in sorted({f.resolve() for f in list_input_files(paths)})]
    if survey:
        planned += [(p, SURVEY) for p in sorted({f.resolve() for f in list_input_files([survey])})]
    for path, spec in planned:
        check_file_columns(path, load_schema(spec.table))
    return planned


def check_file_columns(path: Path, schema: TableSchema) -> None:
    """Read only the header / parquet schema and check the column set (fails fast)."""
    try:
        columns = (
            pl.read_csv(path, n_rows=0, infer_schema=False).columns
            if path.suffix == ".csv"
            else list(pl.read_parquet_schema(path))
        )
    except Exception as exc:  # many reader exception types for a malformed file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SchemaError(f"{path}: cannot read as {path.suffix[1:]}: {first[:200]}") from None
    check_columns(columns, schema, str(path))


def classify_sources(inputs, manifest: dict, runner: TaskRunner) -> list[Source]:
    """Hash every file (in parallel) and mark it new, changed or unchanged."""
    paths = [p for p, _ in inputs]
    hashes = runner.gather(runner.map(file_sha256, paths, label="hash inputs"))
    sources, stems = [], set()
    root = Path(os.path.commonpath([p.parent for p in paths]))
    for index, ((path, spec), sha) in enumerate(zip(inputs, hashes, strict=True)):
        entry = manifest["files"].get(str(path))
        status = "new" if entry is None else "unchanged" if entry["sha256"] == sha else "changed"
        name = "__".join(path.relative_to(root).with_suffix("").parts)
        name = name if name not in stems else f"{name}-{index}"
        stems.add(name)
        sources.append(Source(path, index, spec, sha, status, name))
    return sources


def assign_bundles(n_bundles: int) -> dict[str, int]:
    """LA -> bundle, greedily balancing population (a proxy for rows); deterministic."""
    loads = [0] * n_bundles
    out = {}
    for la, pop in (
        refdata.las()
        .sort(["population", "la_code"], descending=[True, False])
        .select("la_code", "population")
        .iter_rows()
    ):
        b = loads.index(min(loads))
        out[la], loads[b] = b, loads[b] + pop
    return out


def count_bundles(todo: list[Source], bundle_bytes: int, min_bundles: int, threads: int) -> int:
    """Enough LA bundles that each holds about ``bundle_bytes`` of rows in memory, rounded
    up to a multiple of the worker threads so the last round of tasks keeps all busy."""
    est = sum(s.path.stat().st_size * (2 if s.path.suffix == ".csv" else 5) for s in todo)
    wanted = max(min_bundles, math.ceil(est / bundle_bytes))
    return min(len(refdata.la_codes()), math.ceil(wanted / threads) * threads)
