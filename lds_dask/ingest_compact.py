"""Ingest stage 2, one task per LA bundle: drop cross-file duplicates, compact partitions.

Each task reads the bundle's staged rows (in input-file order), removes the later copies of
duplicate test_ids (returned as quarantine rows), and rewrites each LA that gained or lost
rows as ``<subdir>/la_code=X/part-0.parquet``: its kept old rows plus its new rows, sorted
by date (zstd level 1: about 20% faster to write than level 3 and 4% larger).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lds_dask import store as st
from lds_dask.ingest_dedupe import UNIQUE_REASON
from lds_dask.ingest_plan import RECORDS, SURVEY, Source, TableSpec
from lds_dask.ingest_stage import stage_dir
from lds_dask.io import file_sha256
from lds_dask.schemas import load_schema

STAGING_ONLY = ("la_code", "file_index", "valid_pos", "source_row")


@dataclass(frozen=True)
class CompactTask:
    """Inputs of :func:`compact_bundle`: the LAs of one bundle that gained or lost rows."""

    spec: TableSpec
    la_codes: tuple[str, ...]
    staged: tuple[Path, ...]  # in input-file order
    source_files: tuple[str | None, ...]  # file_index -> input path (None: not in this run)
    replaced: tuple[str, ...]  # source files whose earlier rows leave the store
    store: Path
    out_dir: Path


def compact_bundle(task: CompactTask, drop_keys: np.ndarray | None) -> dict:
    """Merge staged rows with existing partitions; write one sorted file per touched LA.

    ``drop_keys`` (file_index * 2**32 + valid_pos) are the later copies of duplicate
    test_ids; they apply to the records table only.
    """
    staged = None
    if task.staged:
        staged = pl.concat([pl.read_ipc(p) for p in task.staged])
        paths = pl.Series(task.source_files, dtype=pl.String)
        staged = staged.with_columns(source_file=paths.gather(staged["file_index"]))
    dups = None
    if staged is not None and task.spec == RECORDS and drop_keys is not None and len(drop_keys):
        key = pl.col("file_index").cast(pl.UInt64) * (1 << 32) + pl.col("valid_pos").cast(pl.UInt64)
        is_dup = key.is_in(pl.Series(drop_keys, dtype=pl.UInt64))
        dups, staged = staged.filter(is_dup), staged.filter(~is_dup)
    by_la = {} if staged is None else staged.partition_by("la_code", as_dict=True)
    parts = {la: compact_partition(task, la, by_la.get((la,))) for la in task.la_codes}
    stored = (
        []
        if staged is None
        else staged.group_by("source_file", "la_code").len().sort("source_file", "la_code").rows()
    )
    return {
        "partitions": parts,
        "stored": stored,
        "dups": None if dups is None or dups.height == 0 else duplicates_as_text(dups),
    }


def compact_partition(task: CompactTask, la_code: str, staged: pl.DataFrame | None) -> dict:
    """Write ``<subdir>/la_code=X/part-0.parquet`` = kept old rows + new rows, sorted by date.

    ``staged`` holds only this LA's new rows (or None).
    """
    rel = st.partition_path(task.spec.subdir, la_code)
    new = None if staged is None else staged.drop(STAGING_ONLY)
    kept, removed = None, 0
    if (task.store / rel).exists():
        old = pl.read_parquet(task.store / rel)
        kept = old.filter(~pl.col("source_file").is_in(list(task.replaced)))
        removed = old.height - kept.height
    if removed == 0 and (new is None or new.height == 0):
        return {"status": "unchanged"}
    frames = [f for f in (kept, new) if f is not None and f.height]
    if not frames:
        return {"status": "removed"}
    columns = frames[-1].columns
    frame = pl.concat([f.select(columns) for f in frames]).sort(
        task.spec.date_col, maintain_order=True
    )
    out = task.out_dir / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(out, compression="zstd", compression_level=1)
    return {"status": "written", "file": rel, "rows": frame.height, "sha256": file_sha256(out)}


def duplicates_as_text(dups: pl.DataFrame) -> pl.DataFrame:
    """Later copies of a test_id, in the quarantine layout (text + reason + provenance)."""
    cols = load_schema(RECORDS.table).columns
    return dups.select(
        *[pl.col(c).cast(pl.String) for c in cols],
        "source_row",
        reason=pl.lit(UNIQUE_REASON),
        source_file="source_file",
    )


def plan_compaction(
    store: Path,
    out_dir: Path,
    todo: list[Source],
    summaries: list[dict],
    manifest: dict,
    bundle_of: dict[str, int],
    replaced: dict[TableSpec, tuple[str, ...]],
) -> list[CompactTask]:
    """One task per (table, bundle) holding an LA that gains rows or loses a changed file's rows."""
    touched: dict[TableSpec, set[str]] = {RECORDS: set(), SURVEY: set()}
    for s, r in zip(todo, summaries, strict=True):
        touched[s.spec].update(r["las"])
        if s.status == "changed":
            touched[s.spec].update(manifest["files"][str(s.path)].get("las", []))
    source_files = [None] * (max(s.index for s in todo) + 1)
    for s in todo:
        source_files[s.index] = str(s.path)
    tasks = []
    for spec, las in touched.items():
        by_bundle: dict[int, list[str]] = {}
        for la in sorted(las):
            by_bundle.setdefault(bundle_of[la], []).append(la)
        for b, codes in sorted(by_bundle.items()):
            files = tuple(sorted(stage_dir(out_dir.parent, spec, b).glob("*")))
            tasks.append(
                CompactTask(
                    spec, tuple(codes), files, tuple(source_files), replaced[spec], store, out_dir
                )
            )
    return tasks


def merge_duplicates(frames: list[pl.DataFrame], todo: list[Source], qdir: Path) -> None:
    """Append cross-file duplicates to their source file's quarantine file."""
    if not frames:
        return
    dups = pl.concat(frames)
    for s in todo:
        mine = dups.filter(pl.col("source_file") == str(s.path))
        if mine.height:
            path = qdir / f"{s.quarantine_name}.parquet"
            old = [pl.read_parquet(path)] if path.exists() else []
            path.parent.mkdir(parents=True, exist_ok=True)
            pl.concat([*old, mine.select(old[0].columns) if old else mine]).sort(
                "source_row"
            ).write_parquet(path)
