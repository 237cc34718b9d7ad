"""Ingest and link: raw extracts -> validated, quarantined, LA-partitioned, linked store.

Dask orchestrates, polars computes, in two stages:

1. one task per input file reads it, validates it with :func:`~lds_dask.schemas.validate_frame`,
   writes the rejected rows to quarantine, derives the linked columns and writes the valid
   rows to staging, one uncompressed Arrow IPC file per LA bundle (LAs grouped by population
   so a bundle is about ``bundle_bytes`` of rows; IPC because staging is written and read
   once, where parquet encoding cost ~3x more). It returns counts and the 64-bit hashes of
   its test_ids.
2. one task per LA bundle compacts the staged rows of each LA that gained or lost rows,
   plus its existing partition, into ``records/la_code=X/part-0.parquet`` sorted by date
   (zstd level 1: about 20% faster to write than level 3 and 4% larger).

Duplicate test_ids: the validator catches them within a file; across files and runs the
driver runs ``is_first_distinct`` over the uint64 hashes (existing store rows first, then
input files sorted by path, then row order) and stage 2 quarantines the later copies as
``test_id:unique``. The hash is polars' seeded ``Series.hash``, only stable within one
polars version, so it is never stored: earlier runs' test_ids are re-hashed from the
partitions (which keep the full test_id). A 64-bit collision (odds about 3e-4 at 1e8 rows)
would quarantine one valid row; reconciliation still holds.

Stored rows keep ``source_file`` so a changed file's earlier rows can be removed exactly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lds_dask import refdata
from lds_dask import store as st
from lds_dask.io import file_sha256, list_input_files, read_table_file
from lds_dask.link import build_covariates, derive_columns, population_frame, read_ahah
from lds_dask.schemas import Field, SchemaError, TableSchema, load_schema, validate_frame

HASH_SEED = 20210104
UNIQUE_REASON = "test_id:unique"
SOURCE_ROW = Field(
    "source_row",
    "int64",
    False,
    "Row number in the source file (1 = first data row).",
    "row number",
)


class RejectRateError(RuntimeError):
    """The run quarantined more rows than the ceiling allows; nothing was committed."""

    def __init__(self, message: str, report: RunReport):
        super().__init__(message)
        self.report = report


class ReconciliationError(RuntimeError):
    """rows_in != rows_stored + rows_quarantined for a file: a bug, never a user error."""


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


# ---------------------------------------------------------------- stage 1: one task per file


@dataclass(frozen=True)
class StageTask:
    """Inputs of :func:`stage_file`."""

    source: Source
    run_dir: Path
    quarantine_dir: Path
    covariates: pl.DataFrame
    bundle_of: dict
    today: dt.date | None


def stage_file(task: StageTask) -> dict:
    """Validate one file, quarantine its rejects, stage its valid rows by LA bundle."""
    src, schema = task.source, load_schema(task.source.spec.table)
    checked = dataclasses.replace(schema, fields=schema.fields + (SOURCE_ROW,))
    df = read_table_file(src.path, schema)
    df = df.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    result = validate_frame(df, checked, today=task.today, source=str(src.path))
    write_quarantine(
        result.rejected.with_columns(pl.col("source_row").cast(pl.Int64)),
        task.quarantine_dir / f"{src.quarantine_name}.parquet",
        src.path,
    )
    valid = derive_columns(
        result.valid, src.spec.date_col, task.covariates if src.spec == RECORDS else None
    ).with_columns(
        file_index=pl.lit(src.index, pl.Int32),
        valid_pos=pl.int_range(pl.len(), dtype=pl.UInt32),
    )
    bundles = pl.DataFrame(
        {"la_code": list(task.bundle_of), "bundle": list(task.bundle_of.values())},
        schema={"la_code": pl.String, "bundle": pl.Int32},
    )  # a join: replace_strict with a large mapping is ~50x slower in polars 2.1
    valid = valid.join(bundles, on="la_code", how="left", maintain_order="left")
    for (bundle,), part in valid.partition_by("bundle", as_dict=True).items():
        out = stage_path(task.run_dir, src.spec, bundle, src.index)
        out.parent.mkdir(parents=True, exist_ok=True)
        part.drop("bundle").write_ipc(out, compression="uncompressed")
    hashes = (
        valid[src.spec.unique_col].hash(seed=HASH_SEED).to_numpy() if src.spec.unique_col else None
    )
    reasons = result.rejected["reason"].value_counts()
    return {
        "index": src.index,
        "rows_in": result.rows_in,
        "valid": valid.height,
        "reasons": dict(reasons.iter_rows()),
        "hashes": hashes,
        "las": sorted(valid["la_code"].unique().to_list()),
    }


def stage_path(run_dir: Path, spec: TableSpec, bundle: int, index: int) -> Path:
    return run_dir / "stage" / spec.subdir / f"b{bundle:04d}" / f"f{index:06d}.arrow"


def write_quarantine(rejected: pl.DataFrame, path: Path, source: Path) -> None:
    """Rejected rows as text + reason + source_file + source_row; no file when none."""
    if rejected.height == 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rejected.with_columns(source_file=pl.lit(str(source))).sort("source_row").write_parquet(path)


# ---------------------------------------------------------------- stage 2: one task per LA bundle

STAGING_ONLY = ("la_code", "file_index", "valid_pos", "source_row")


@dataclass(frozen=True)
class CompactTask:
    """Inputs of :func:`compact_bundle`: the LAs of one bundle that gained or lost rows."""

    spec: TableSpec
    la_codes: tuple[str, ...]
    staged: tuple[Path, ...]  # in input-file order
    source_files: tuple[str | None, ...]  # file_index -> input path (None: not in this run)
    drop_keys: np.ndarray | None  # file_index * 2**32 + valid_pos of cross-file duplicates
    replaced: tuple[str, ...]  # source files whose earlier rows leave the store
    store: Path
    out_dir: Path


def compact_bundle(task: CompactTask) -> dict:
    """Merge staged rows with existing partitions; write one sorted file per touched LA."""
    staged = None
    if task.staged:
        staged = pl.concat([pl.read_ipc(p) for p in task.staged])
        paths = pl.Series(task.source_files, dtype=pl.String)
        staged = staged.with_columns(source_file=paths.gather(staged["file_index"]))
    dups = None
    if staged is not None and task.drop_keys is not None and len(task.drop_keys):
        key = pl.col("file_index").cast(pl.UInt64) * (1 << 32) + pl.col("valid_pos").cast(pl.UInt64)
        is_dup = key.is_in(pl.Series(task.drop_keys, dtype=pl.UInt64))
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


def hash_partitions(paths: list[Path], replaced: tuple[str, ...]) -> np.ndarray:
    """Hashes of the test_ids already stored (minus rows of replaced source files)."""
    frames = [pl.read_parquet(p, columns=["test_id", "source_file"]) for p in paths]
    ids = pl.concat(frames).filter(~pl.col("source_file").is_in(list(replaced)))["test_id"]
    return ids.hash(seed=HASH_SEED).to_numpy()


# ---------------------------------------------------------------- orchestration (driver)


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
    :class:`~lds_dask.schemas.SchemaError` / :class:`~lds_dask.store.StoreError` for bad input.
    """
    params = params or IngestParams(max_reject_rate=max_reject_rate)
    store = Path(store)
    inputs = plan_inputs(raw_paths, survey)
    ahah_frame = read_ahah(Path(ahah)) if ahah else None
    st.open_store(store, create=True)
    messages = st.recover_store(store)
    manifest = st.read_manifest(store)
    sources = classify_sources(inputs, manifest, client, progress)
    messages += [
        f"{s.path}: already ingested with the same sha256; skipped"
        for s in sources
        if s.status == "unchanged"
    ]
    todo = [s for s in sources if s.status != "unchanged"]
    if not todo:
        return RunReport(
            "",
            "noop",
            str(store),
            0.0,
            params.max_reject_rate,
            "",
            (),
            messages=(*messages, "nothing to ingest: the store is up to date"),
        )
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = store / st.TMP_DIR / run_id
    try:
        covariates, ahah_note = choose_covariates(ahah_frame, ahah, store)
        return run_ingest(
            store,
            run_dir,
            todo,
            manifest,
            covariates,
            ahah_note,
            client,
            params,
            progress,
            messages,
        )
    except BaseException:
        if not (run_dir / st.COMMIT_FILE).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


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
    from lds_dask.schemas import check_columns

    check_columns(columns, schema, str(path))


def classify_sources(inputs, manifest: dict, client, progress: bool) -> list[Source]:
    """Hash every file (in parallel) and mark it new, changed or unchanged."""
    hashes = run_tasks(file_sha256, [p for p, _ in inputs], client, "hash inputs", progress)
    sources, stems = [], set()
    root = Path(os.path.commonpath([p.parent for p, _ in inputs]))
    for index, ((path, spec), sha) in enumerate(zip(inputs, hashes, strict=True)):
        entry = manifest["files"].get(str(path))
        status = "new" if entry is None else "unchanged" if entry["sha256"] == sha else "changed"
        name = "__".join(path.relative_to(root).with_suffix("").parts)
        name = name if name not in stems else f"{name}-{index}"
        stems.add(name)
        sources.append(Source(path, index, spec, sha, status, name))
    return sources


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


def run_tasks(fn, items: list, client, label: str, progress: bool) -> list:
    """Run ``fn`` over ``items`` on Dask (or in-process without a client), with a progress bar."""
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), disable=not progress) as bar:
        task_id = bar.add_task(label, total=len(items))
        if client is None:
            out = []
            for item in items:
                out.append(fn(item))
                bar.advance(task_id)
            return out
        from distributed import as_completed

        futures = client.map(fn, items, pure=False)
        try:
            for future in as_completed(futures):
                future.result() if future.status == "error" else bar.advance(task_id)
        except BaseException:
            client.cancel(futures)
            raise
        return client.gather(futures)


def run_ingest(
    store, run_dir, todo, manifest, covariates, ahah_note, client, params, progress, messages
) -> RunReport:
    """Stage, deduplicate, compact, reconcile, then commit or fail on the reject rate."""
    out_dir, run_id = run_dir / "out", run_dir.name
    qdir = out_dir / "quarantine" / run_id
    threads = sum(client.nthreads().values()) if client is not None else 1
    bundle_of = assign_bundles(count_bundles(todo, params, threads))
    tasks = [StageTask(s, run_dir, qdir, covariates, bundle_of, params.today) for s in todo]
    staged = run_tasks(stage_file, tasks, client, "validate + stage", progress)
    replaced = {
        spec: tuple(str(s.path) for s in todo if s.status == "changed" and s.spec == spec)
        for spec in (RECORDS, SURVEY)
    }
    drop_keys, dup_counts = find_duplicates(
        store, manifest, todo, staged, replaced[RECORDS], client, progress
    )
    compact = plan_compaction(
        store, out_dir, todo, staged, manifest, bundle_of, drop_keys, replaced
    )
    results = run_tasks(compact_bundle, compact, client, "compact partitions", progress)
    merge_duplicates([r["dups"] for r in results if r["dups"] is not None], todo, qdir)
    files, las_by_file = reconcile(todo, staged, dup_counts, results)
    report = build_report(run_id, store, files, results, compact, ahah_note, params, messages)
    if report.reject_rate > params.max_reject_rate:
        report = dataclasses.replace(
            report, status="rejected", partitions_written=(), partitions_removed=()
        )
        st.write_json_atomic(store / "_runs" / f"{run_id}.json", report.to_dict())
        raise RejectRateError(reject_message(report), report)
    return publish(
        store, run_dir, report, manifest, todo, files, las_by_file, covariates, compact, results
    )


def count_bundles(todo: list[Source], params: IngestParams, threads: int = 1) -> int:
    """Enough LA bundles that each holds about ``bundle_bytes`` of rows in memory, rounded
    up to a multiple of the worker threads so the last round of tasks keeps all busy."""
    est = sum(s.path.stat().st_size * (2 if s.path.suffix == ".csv" else 5) for s in todo)
    wanted = max(params.min_bundles, math.ceil(est / params.bundle_bytes))
    return min(len(refdata.la_codes()), math.ceil(wanted / threads) * threads)


def find_duplicates(store, manifest, todo, staged, replaced, client, progress):
    """Keys (file_index * 2**32 + valid_pos) of valid rows whose test_id came earlier."""
    recs = [(s, r) for s, r in zip(todo, staged, strict=True) if s.spec == RECORDS]
    if not recs:
        return None, {}
    existing = sorted(store / e["file"] for e in manifest["partitions"].get("records", {}).values())
    groups = [existing[i::8] for i in range(min(8, len(existing)))]
    from functools import partial

    old = (
        run_tasks(
            partial(hash_partitions, replaced=replaced),
            groups,
            client,
            "hash stored test_ids",
            progress,
        )
        if groups
        else []
    )
    hashes = [*old, *(r["hashes"] for _, r in recs)]
    first = pl.Series(np.concatenate(hashes), dtype=pl.UInt64).is_first_distinct().to_numpy()
    offset, keys, counts = sum(len(h) for h in old), [], {}
    for s, r in recs:
        pos = np.flatnonzero(~first[offset : offset + len(r["hashes"])]).astype(np.uint64)
        offset += len(r["hashes"])
        if len(pos):
            keys.append(np.uint64(s.index) * np.uint64(1 << 32) + pos)
            counts[s.index] = len(pos)
    return (np.concatenate(keys) if keys else None), counts


def plan_compaction(store, out_dir, todo, staged, manifest, bundle_of, drop_keys, replaced):
    """One task per (table, bundle) holding an LA that gains rows or loses a changed file's rows."""
    touched: dict[TableSpec, set[str]] = {RECORDS: set(), SURVEY: set()}
    for s, r in zip(todo, staged, strict=True):
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
            files = tuple(sorted((out_dir.parent / "stage" / spec.subdir / f"b{b:04d}").glob("*")))
            tasks.append(
                CompactTask(
                    spec,
                    tuple(codes),
                    files,
                    tuple(source_files),
                    drop_keys if spec == RECORDS else None,
                    replaced[spec],
                    store,
                    out_dir,
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


def reconcile(todo, staged, dup_counts, results) -> tuple[list[dict], dict[str, list[str]]]:
    """Per-file counts; raise unless rows_in == rows_stored + rows_quarantined exactly."""
    stored: dict[str, int] = {}
    las: dict[str, set[str]] = {}
    for res in results:
        for source_file, la, n in res["stored"]:
            stored[source_file] = stored.get(source_file, 0) + n
            las.setdefault(source_file, set()).add(la)
    files = []
    for s, r in zip(todo, staged, strict=True):
        reasons = dict(r["reasons"])
        if dup_counts.get(s.index):
            reasons[UNIQUE_REASON] = reasons.get(UNIQUE_REASON, 0) + dup_counts[s.index]
        entry = {
            "path": str(s.path),
            "table": s.spec.table,
            "status": s.status,
            "sha256": s.sha256,
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
        tuple(sorted(written)),
        tuple(sorted(removed)),
        tuple(messages),
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
