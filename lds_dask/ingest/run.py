"""Ingest and link: raw extracts -> validated, quarantined, LA-partitioned, linked store.

Dask orchestrates, polars computes, in two stages:

1. one task per run of consecutive input files (:mod:`~lds_dask.ingest.stage`) reads and
   validates each file with :func:`~lds_dask.contract.validation.validate_frame`, writes the
   rejected rows to quarantine, and stages the valid rows by LA bundle (LAs grouped by
   population so a bundle is about ``bundle_bytes`` of rows): one uncompressed Arrow IPC
   file per bundle, categorical fields as integer codes (about 72 bytes a record,
   written once and read once). It returns counts, and keeps the 64-bit hashes of its
   test_ids on the worker, by bucket.
2. one task per LA bundle (:mod:`~lds_dask.ingest.compact`) takes the staged rows of each
   LA that gained or lost rows, plus its existing partition, derives the linked columns
   (:mod:`~lds_dask.ingest.link`) and writes ``records/la_code=X/part-0.parquet`` sorted by date
   (zstd level 1, straight from the codes).

Duplicate test_ids: the validator catches them within a file; across files and runs the
first valid copy is kept (existing store rows first, then input files sorted by path, then
row order) and stage 2 quarantines the later copies as ``test_id:unique``. Between the
stages, one reduction task per hash bucket finds the later copies, worker to worker; the
client gathers only their keys (:mod:`~lds_dask.ingest.dedupe`). The hash is polars'
seeded ``Series.hash``, only stable within one polars version, so it is never stored:
earlier runs' test_ids are re-hashed from the partitions (which keep the full test_id). A
64-bit collision (odds about 3e-4 at 1e8 rows) would quarantine one valid row;
reconciliation still holds.

Stored rows keep ``source_file`` so a changed file's earlier rows can be removed exactly.
This module holds the public API and the orchestration (on the client); planning the run
is in :mod:`~lds_dask.ingest.plan`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lds_dask.contract.io import skipped_line
from lds_dask.ingest.compact import compact_bundle, merge_duplicates, plan_compaction
from lds_dask.ingest.dedupe import (
    UNIQUE_REASON,
    collect_staged,
    count_buckets,
    find_duplicates,
)
from lds_dask.ingest.link import build_covariates, covariates_by_code, population_frame, read_ahah
from lds_dask.ingest.plan import (
    RECORDS,
    SURVEY,
    assign_bundles,
    bundle_lookup,
    classify_sources,
    count_bundles,
    group_sources,
    plan_inputs,
)
from lds_dask.ingest.stage import StageTask, stage_files
from lds_dask.runtime.errors import RowsRejectedError, UnexpectedError
from lds_dask.runtime.tasks import TaskRunner
from lds_dask.store import layout as st


class RejectRateError(RowsRejectedError, RuntimeError):
    """The run quarantined more rows than the ceiling allows; nothing was committed."""

    def __init__(self, message: str, report: RunReport):
        super().__init__(message)
        self.report = report


class ReconciliationError(UnexpectedError, RuntimeError):
    """rows_in != rows_stored + rows_quarantined for a file: a bug, never a user error."""


@dataclass(frozen=True)
class RunReport:
    """What a run did, per input file; JSON-serialisable via :meth:`to_dict`."""

    run_id: str
    status: str  # committed | noop | rejected
    store: str
    reject_rate: float
    max_reject_rate: float
    ahah: str
    files: tuple[dict, ...]
    skipped: tuple[dict, ...] = ()  # files of the input folders not read: path, reason
    partitions_written: tuple[str, ...] = ()
    partitions_removed: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def totals(self) -> dict[str, int]:
        keys = ("rows_in", "rows_stored", "rows_quarantined")
        return {k: sum(f[k] for f in self.files) for k in keys}


@dataclass(frozen=True)
class IngestParams:
    """Knobs of :func:`ingest`. A bundle targets ``bundle_bytes`` of in-memory rows."""

    max_reject_rate: float = 0.05
    bundle_bytes: int = 256 * 2**20
    min_bundles: int = 4
    today: dt.date | None = None


def ingest(
    raw_paths,
    store,
    survey=None,
    ahah=None,
    client=None,
    max_reject_rate: float = 0.05,
    progress: bool = True,
    params: IngestParams | None = None,
) -> RunReport:
    """Validate, quarantine, link and partition raw extracts into ``store``; commit atomically.

    Files already ingested with the same sha256 are skipped; a changed file replaces its
    earlier rows. Raises :class:`RejectRateError` (after writing the run report, without
    committing) when more than ``max_reject_rate`` of the rows are quarantined, and
    :class:`~lds_dask.contract.schemas.SchemaError` / :class:`~lds_dask.store.layout.StoreError` for bad input.
    """
    params = params or IngestParams(max_reject_rate=max_reject_rate)
    store = Path(store)
    runner = TaskRunner(client, progress)
    inputs = plan_inputs(raw_paths, survey)
    skipped = tuple({"path": str(p), "reason": why} for p, why in inputs.skipped)
    ahah_frame = read_ahah(Path(ahah)) if ahah else None
    st.open_store(store, create=True)
    messages = [skipped_line(p, why) for p, why in inputs.skipped]
    messages += st.recover_store(store)
    manifest = st.read_manifest(store)
    sources = classify_sources(inputs.files, manifest, runner)
    messages += [
        f"{s.path}: already ingested with the same sha256; skipped"
        for s in sources
        if s.status == "unchanged"
    ]
    todo = [s for s in sources if s.status != "unchanged"]
    if not todo:
        messages.append("nothing to ingest: the store is up to date")
        noop = RunReport("", "noop", str(store), 0.0, params.max_reject_rate, "", ())
        return dataclasses.replace(noop, skipped=skipped, messages=tuple(messages))
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = store / st.TMP_DIR / run_id
    try:
        covariates, ahah_note = choose_covariates(ahah_frame, ahah, store)
        return run_ingest(
            store, run_dir, todo, manifest, covariates, ahah_note, runner, params, messages, skipped
        )
    except BaseException:
        if not (run_dir / st.COMMIT_FILE).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def choose_covariates(ahah_frame, ahah_path, store: Path) -> tuple[pl.DataFrame, str]:
    """The LSOA covariates for this run and a note saying where the AHAH deciles came from."""
    if ahah_frame is not None:
        return build_covariates(ahah_frame), str(ahah_path)
    stored = store / "lsoa_covariates.parquet"
    if stored.exists():
        cov = pl.read_parquet(stored)
        if cov["ahah_decile"].is_not_null().any():
            return cov, "reused from the store's lsoa_covariates.parquet"
    return build_covariates(None), "none: no --ahah file, so ahah_decile/ahah_quintile are null"


def run_ingest(
    store, run_dir, todo, manifest, covariates, ahah_note, runner, params, messages, skipped
) -> RunReport:
    """Stage, deduplicate, compact, reconcile, then commit or fail on the reject rate."""
    out_dir, run_id = run_dir / "out", run_dir.name
    qdir = out_dir / "quarantine" / run_id
    threads = runner.n_threads()
    bundle_of = assign_bundles(
        count_bundles(todo, params.bundle_bytes, params.min_bundles, threads)
    )
    replaced = {
        spec: tuple(str(s.path) for s in todo if s.status == "changed" and s.spec == spec)
        for spec in (RECORDS, SURVEY)
    }
    n_buckets = count_buckets(threads)
    bundles = bundle_lookup(bundle_of)
    tasks = [
        StageTask(group, i, run_dir, qdir, bundles, params.today, n_buckets)
        for i, group in enumerate(group_sources(todo, params.bundle_bytes, threads))
    ]
    summaries, drop_keys, dup_counts = stage_and_dedupe(
        runner, tasks, stored_records(store, manifest), replaced[RECORDS], n_buckets
    )
    compact = plan_compaction(store, out_dir, todo, summaries, manifest, bundle_of, replaced)
    drops = runner.share(drop_keys) if drop_keys is not None else None
    links = runner.share(covariates_by_code(covariates))
    results = runner.gather(
        runner.map(compact_bundle, compact, drops, links, label="compact partitions"),
        each=lambda i: [path.unlink() for path in compact[i].staged],  # free the disk early
    )
    merge_duplicates([r["dups"] for r in results if r["dups"] is not None], todo, qdir)
    files, las_by_file = reconcile(todo, summaries, dup_counts, results)
    messages = [*messages, *(f"{f['path']}: 0 rows" for f in files if f["rows_in"] == 0)]
    report = build_report(run_id, store, files, results, compact, ahah_note, params, messages)
    report = dataclasses.replace(report, skipped=skipped)
    if report.reject_rate > params.max_reject_rate:
        report = dataclasses.replace(
            report, status="rejected", partitions_written=(), partitions_removed=()
        )
        st.write_json_atomic(store / "_runs" / f"{run_id}.json", report.to_dict())
        raise RejectRateError(reject_message(report), report)
    return publish(
        store, run_dir, report, manifest, todo, files, las_by_file, covariates, compact, results
    )


def stage_and_dedupe(
    runner: TaskRunner,
    tasks: list[StageTask],
    stored: list[Path],
    replaced: tuple[str, ...],
    n_buckets: int,
) -> tuple[list[dict], np.ndarray | None, dict[int, int]]:
    """Stage 1 over every run of files, then the bucketed duplicate search over its hashes.

    Returns each file's summary, the keys of duplicate rows and their count per file index.
    The hash buckets go from the stage tasks to the reductions without reaching the client,
    and are released on return.
    """
    staged = runner.map(stage_files, tasks, label="validate + stage")
    has_ids = [t.sources[0].spec == RECORDS for t in tasks]
    summaries, parts = collect_staged(runner, staged, has_ids, n_buckets)
    del staged  # each run's results are released once combined
    drop_keys, dup_counts = find_duplicates(runner, stored, replaced, parts, n_buckets)
    return summaries, drop_keys, dup_counts


def stored_records(store: Path, manifest: dict) -> list[Path]:
    """The record partitions already in the store, sorted."""
    return sorted(store / e["file"] for e in manifest["partitions"].get("records", {}).values())


def reconcile(todo, summaries, dup_counts, results) -> tuple[list[dict], dict[str, list[str]]]:
    """Per-file counts; raise unless rows_in == rows_stored + rows_quarantined exactly."""
    stored: dict[str, int] = {}
    las: dict[str, set[str]] = {}
    for res in results:
        for source_file, la, n in res["stored"]:
            stored[source_file] = stored.get(source_file, 0) + n
            las.setdefault(source_file, set()).add(la)
    files = []
    for s, r in zip(todo, summaries, strict=True):
        reasons = dict(r["reasons"])
        if dup_counts.get(s.index):
            reasons[UNIQUE_REASON] = reasons.get(UNIQUE_REASON, 0) + dup_counts[s.index]
        entry = {
            "path": str(s.path),
            "table": s.spec.table,
            "status": s.status,
            "sha256": r["sha256"],
            "rows_in": r["rows_in"],
            "rows_stored": stored.get(str(s.path), 0),
            "rows_quarantined": sum(reasons.values()),
            "reasons": dict(sorted(reasons.items())),
        }
        if entry["rows_in"] != entry["rows_stored"] + entry["rows_quarantined"]:
            raise ReconciliationError(
                f"{s.path}: reconciliation failed: rows_in {entry['rows_in']:,} "
                f"!= stored {entry['rows_stored']:,} + quarantined "
                f"{entry['rows_quarantined']:,}"
            )
        files.append(entry)
    return files, {k: sorted(v) for k, v in las.items()}


def build_report(run_id, store, files, results, compact, ahah_note, params, messages) -> RunReport:
    """The run report; partition names are ``<subdir>/la_code=X``."""
    written, removed = [], []
    for task, res in zip(compact, results, strict=True):
        for la, part in res["partitions"].items():
            name = f"{task.spec.subdir}/la_code={la}"
            (
                written
                if part["status"] == "written"
                else removed
                if part["status"] == "removed"
                else []
            ).append(name)
    rows_in = sum(f["rows_in"] for f in files)
    rate = sum(f["rows_quarantined"] for f in files) / rows_in if rows_in else 0.0
    return RunReport(
        run_id,
        "committed",
        str(store),
        rate,
        params.max_reject_rate,
        ahah_note,
        tuple(files),
        partitions_written=tuple(sorted(written)),
        partitions_removed=tuple(sorted(removed)),
        messages=tuple(messages),
    )


def reject_message(report: RunReport) -> str:
    """One line: the rate, the ceiling, and the largest rule by file (never a value)."""
    t = report.totals
    worst = max(
        ((n, rule, f["path"]) for f in report.files for rule, n in f["reasons"].items()),
        default=(0, "-", "-"),
    )
    return (
        f"run {report.run_id} quarantined {report.reject_rate:.2%} of rows "
        f"({t['rows_quarantined']:,} of {t['rows_in']:,}), above the "
        f"{report.max_reject_rate:.2%} ceiling; nothing was committed. Largest: "
        f"{worst[0]:,} rows failing {worst[1]} in {worst[2]}. Report: "
        f"{Path(report.store) / '_runs' / (report.run_id + '.json')}"
    )


def publish(
    store, run_dir, report, manifest, todo, files, las_by_file, covariates, compact, results
) -> RunReport:
    """Write the run's side files and report, then commit the new manifest atomically."""
    out, run_id = run_dir / "out", report.run_id
    side = [f"_runs/{run_id}.json", "lsoa_covariates.parquet"]
    side += [f"quarantine/{run_id}"] if (out / "quarantine" / run_id).exists() else []
    out.mkdir(parents=True, exist_ok=True)  # a run of empty files wrote no partition here
    covariates.write_parquet(out / "lsoa_covariates.parquet")
    if not (store / "population.parquet").exists():
        population_frame().write_parquet(out / "population.parquet")
        side.append("population.parquet")
    keys = ("table", "sha256", "rows_in", "rows_stored", "rows_quarantined")
    entries = {
        str(s.path): {**{k: f[k] for k in keys}, "las": las_by_file.get(str(s.path), [])}
        for s, f in zip(todo, files, strict=True)
    }
    changes = [
        (task.spec.subdir, la, part)
        for task, res in zip(compact, results, strict=True)
        for la, part in res["partitions"].items()
    ]
    new, replace, remove = st.updated_manifest(manifest, run_id, entries, changes)
    outputs = {str(store / r.split("/la_code=")[0]) for r in replace + remove + side}
    report = dataclasses.replace(report, outputs=tuple(sorted(outputs)))
    st.write_json_atomic(out / "_runs" / f"{run_id}.json", report.to_dict())
    st.commit_run(store, run_dir, new, replace + side, remove)
    return report
