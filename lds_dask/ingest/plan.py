"""Planning an ingest run: the input files, their tables and status, and the LA bundles.

Every input file gets an index: its position when the files are sorted by path (records
first, then survey). The index orders duplicate test_ids (an earlier file's copy is kept).
Consecutive files are grouped into runs, one stage-1 task per run; LAs are grouped into
bundles of roughly equal population, one stage-2 task per bundle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from lds_dask.contract import refdata
from lds_dask.contract.io import check_file, find_input_files, source_names
from lds_dask.contract.schemas import (
    load_schema,
    refdata_codes,
)
from lds_dask.runtime.hashing import file_sha256
from lds_dask.runtime.tasks import TaskRunner


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
    sha256: str | None  # None until the stage task hashes a new file
    status: str  # new | changed | unchanged
    quarantine_name: str


@dataclass(frozen=True)
class InputPlan:
    """The input files of a run, sorted by path (records first), each with its table, and
    the files of the input directories that are not read, with the reason."""

    files: tuple[tuple[Path, TableSpec], ...]
    skipped: tuple[tuple[Path, str], ...]


def plan_inputs(raw_paths, survey) -> InputPlan:
    """Every input file with its table; checks existence, headers and parquet types."""
    paths = [raw_paths] if isinstance(raw_paths, str | Path) else list(raw_paths)
    found = {RECORDS: find_input_files(paths)}
    if survey:
        found[SURVEY] = find_input_files([survey])
    planned = tuple(
        (p, spec)
        for spec, inputs in found.items()
        for p in sorted({f.resolve() for f in inputs.files})
    )
    for path, spec in planned:
        check_file(path, load_schema(spec.table))
    skipped = tuple((p.resolve(), why) for inputs in found.values() for p, why in inputs.skipped)
    return InputPlan(planned, skipped)


def classify_sources(inputs, manifest: dict, runner: TaskRunner) -> list[Source]:
    """Mark every file new, changed or unchanged. Only files the store has seen are hashed
    here (in parallel); a new file is hashed by the stage task that reads it."""
    paths = [p for p, _ in inputs]
    seen = [p for p in paths if str(p) in manifest["files"]]
    hashed = runner.gather(runner.map(file_sha256, seen, label="hash inputs"))
    hashes = dict(zip(seen, hashed, strict=True))
    sources = []
    names = source_names(paths)
    for index, (path, spec) in enumerate(inputs):
        entry, sha = manifest["files"].get(str(path)), hashes.get(path)
        status = "new" if entry is None else "unchanged" if entry["sha256"] == sha else "changed"
        sources.append(Source(path, index, spec, sha, status, names[index]))
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


def estimated_bytes(path: Path) -> int:
    """Rough in-memory size of a file's rows (parquet is compressed, CSV is text)."""
    return path.stat().st_size * (2 if path.suffix == ".csv" else 5)


def count_bundles(todo: list[Source], bundle_bytes: int, min_bundles: int, threads: int) -> int:
    """Enough LA bundles that each holds about ``bundle_bytes`` of rows in memory, rounded
    up to a multiple of the worker threads so the last round of tasks keeps all busy."""
    est = sum(estimated_bytes(s.path) for s in todo)
    wanted = max(min_bundles, math.ceil(est / bundle_bytes))
    return min(len(refdata.la_codes()), math.ceil(wanted / threads) * threads)


def bundle_lookup(bundle_of: dict[str, int]) -> pl.Series:
    """The bundle of each LA code (a gather table for coded rows)."""
    return pl.Series([bundle_of[code] for code in refdata_codes("la").values], dtype=pl.UInt32)


def group_sources(todo: list[Source], target_bytes: int, threads: int) -> list[tuple[Source, ...]]:
    """Runs of consecutive files of one table, each about ``target_bytes`` of rows (smaller
    when that leaves a worker thread idle): one stage-1 task per run."""
    total = sum(estimated_bytes(s.path) for s in todo)
    target = min(target_bytes, math.ceil(total / threads))
    runs: list[list[Source]] = []
    size = 0
    for s in todo:
        if not runs or runs[-1][0].spec != s.spec or size >= target:
            runs.append([])
            size = 0
        runs[-1].append(s)
        size += estimated_bytes(s.path)
    return [tuple(run) for run in runs]
