"""The end-to-end refresh: a job spec run through synth/ingest -> cube -> disclosure -> outputs.

Jobs wire library functions together and hold no logic of their own (DESIGN.md). All
stages share one Dask client. Each stage has a *fingerprint*: a hash of the code version,
its own config and what it reads (input file hashes for ingest, the store manifest for the
cube, the upstream fingerprint after that). A stage whose fingerprint matches the last
successful run, and whose outputs are still there, is skipped, so an incremental refresh
re-runs only what depends on what changed (ingest is itself incremental by file).

Outputs are published atomically: a stage writes into ``.<name>.tmp-<run_id>`` beside its
output and is swapped in only when complete, and its state entry is dropped before it
starts and written after, so a killed or failed stage never leaves something half-written
that a later run would take as valid. Every run writes ``<root>/_refresh/<run_id>.json``
and ``<root>/refresh_manifest.json`` (input hashes, config, code version, rows per stage,
timings, outputs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lds_dask import __version__
from lds_dask.jobspec import JobSpec
from lds_dask.store import write_json_atomic

STATE_DIR, STATE_FILE, LATEST_FILE = "_refresh", "state.json", "refresh_manifest.json"


class RefreshError(RuntimeError):
    """A stage failed; the message names the stage and the cause (never a record value)."""


@dataclass(frozen=True)
class RefreshOptions:
    """How to run a spec: cluster overrides, forced re-run, progress display."""

    scheduler: str | None = None
    n_workers: int | None = None
    force: bool = False
    progress: bool = True


@dataclass
class StageResult:
    """What one stage did: ran or skipped, its fingerprint, timings, rows and outputs."""

    name: str
    status: str  # ran | skipped
    fingerprint: str
    seconds: float = 0.0
    rows_in: int | None = None
    rows_out: int | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    details: dict = field(default_factory=dict)


@dataclass
class RunContext:
    """Shared by the stages of one run: spec, client, previous state, results so far."""

    spec: JobSpec
    options: RefreshOptions
    client: object
    run_id: str
    state: dict
    say: Callable[[str], None]
    results: dict[str, StageResult] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    cache: dict[str, object] = field(default_factory=dict)  # the loaded cube, its safe view


@dataclass(frozen=True)
class Stage:
    """A named step: when it applies, its fingerprint, and the function that runs it."""

    name: str
    enabled: Callable[[JobSpec], bool]
    fingerprint: Callable[[RunContext], str]
    run: Callable[[RunContext, Path | None], StageResult]
    output: Callable[[JobSpec], Path | None]


# ---------------------------------------------------------------- fingerprints and state


def digest(*parts: object) -> str:
    """A stable short hash of JSON-able parts (the code version is always included)."""
    text = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def state_path(spec: JobSpec) -> Path:
    return spec.outputs.root / STATE_DIR / STATE_FILE


def read_state(spec: JobSpec) -> dict:
    """The last successful run of each stage (fingerprint, rows, outputs), or empty."""
    try:
        return json.loads(state_path(spec).read_text())
    except (OSError, ValueError):
        return {}


def save_stage_state(ctx: RunContext, name: str, entry: dict | None) -> None:
    """Record (or, with None, drop) a stage's state; atomic, so a kill never half-writes it."""
    if entry is None:
        ctx.state.pop(name, None)
    else:
        ctx.state[name] = entry
    write_json_atomic(state_path(ctx.spec), ctx.state)


def is_current(ctx: RunContext, stage: Stage, fingerprint: str) -> bool:
    """True when the stage last succeeded with this fingerprint and its output is intact."""
    entry = ctx.state.get(stage.name)
    if ctx.options.force or not entry or entry.get("fingerprint") != fingerprint:
        return False
    out = stage.output(ctx.spec)
    if out is not None and not out.exists():
        return False
    recorded = entry.get("files")
    return recorded is None or hash_tree(out) == recorded


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path (the evidence for exports)."""
    from lds_dask.io import file_sha256

    return {
        p.relative_to(root).as_posix(): file_sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- atomic publication


def temp_output(final: Path, run_id: str) -> Path:
    """A fresh sibling folder to write into; renamed over ``final`` when complete."""
    tmp = final.with_name(f".{final.name}.tmp-{run_id}")
    if tmp.exists():
        shutil.rmtree(tmp)
    final.parent.mkdir(parents=True, exist_ok=True)
    return tmp


def publish_output(tmp: Path, final: Path, run_id: str) -> None:
    """Swap ``tmp`` in for ``final``: old aside, new in, old deleted (each step a rename)."""
    old = final.with_name(f".{final.name}.old-{run_id}")
    if final.exists():
        os.rename(final, old)
    os.rename(tmp, final)
    if old.exists():
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def recover_outputs(spec: JobSpec, outputs: list[Path]) -> list[str]:
    """After a killed run: restore outputs moved aside, delete unfinished temp folders."""
    done = []
    for final in outputs:
        if not final.parent.is_dir():
            continue
        for p in sorted(final.parent.glob(f".{final.name}.old-*")):
            if not final.exists():
                os.rename(p, final)
                done.append(f"restored {final} from an interrupted run")
            else:
                shutil.rmtree(p, ignore_errors=True)
        # ours (.NAME.tmp-RUN) and what a stage nests beside it (..NAME.tmp-RUN.partial-X)
        for p in final.parent.glob(f"*.{final.name}.tmp-*"):
            shutil.rmtree(p, ignore_errors=True)
            done.append(f"removed the unfinished {p.name} of an interrupted run")
    return done


# ---------------------------------------------------------------- running


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def run_refresh(
    spec: JobSpec,
    options: RefreshOptions = RefreshOptions(),
    say: Callable[[str], None] = print,
    client=None,
) -> dict:
    """Run every enabled stage of ``spec`` on one Dask client; return the run manifest.

    ``client``: an existing ``distributed.Client`` (e.g. from dask-gateway); otherwise one
    is made by :func:`lds_dask.cluster.get_client` from the options and ``[cluster]``.
    """
    from contextlib import nullcontext

    from lds_dask.cluster import get_client

    run_id, started = new_run_id(), time.time()
    root = spec.outputs.root
    _check_root(root)
    for line in recover_outputs(spec, [s.output(spec) for s in STAGES if s.output(spec)]):
        say(line)
    ctx = None
    scheduler = options.scheduler or spec.cluster.scheduler or None
    n_workers = options.n_workers or spec.cluster.n_workers or None
    try:
        with (
            nullcontext(client)
            if client is not None
            else get_client(
                scheduler, n_workers, spec.cluster.memory_limit or None, quiet=not options.progress
            ) as client
        ):
            ctx = RunContext(spec, options, client, run_id, read_state(spec), say)
            ctx.inputs["client"] = _client_info(client)
            run_stages(ctx, [s for s in STAGES if s.enabled(spec)])
    except BaseException as exc:
        write_run_manifest(spec, run_id, started, ctx, error=exc)
        raise
    return write_run_manifest(spec, run_id, started, ctx)


def _check_root(root: Path) -> None:
    """A clear one-line error when the output root cannot be a writable directory."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RefreshError(f"output root {root}: cannot write ({exc.strerror or exc})") from None


def _client_info(client) -> str:
    info = client.scheduler_info()
    return f"{client.scheduler.address} ({len(info.get('workers', {}))} workers)"


def run_stages(ctx: RunContext, stages: list[Stage]) -> None:
    """Run or skip each stage in order, printing its status."""
    for i, stage in enumerate(stages, 1):
        label = f"[{i}/{len(stages)}] {stage.name}"
        try:
            run_or_skip(ctx, stage, label)
        except (ValueError, RuntimeError) as exc:
            if isinstance(exc, RefreshError):
                raise
            raise RefreshError(f"stage {stage.name}: {_error_text(exc)}") from exc


def run_or_skip(ctx: RunContext, stage: Stage, label: str) -> None:
    """Skip a stage whose fingerprint and outputs are current, else run it."""
    fingerprint = stage.fingerprint(ctx)
    if is_current(ctx, stage, fingerprint):
        prev = ctx.state[stage.name]
        ctx.results[stage.name] = StageResult(
            stage.name,
            "skipped",
            fingerprint,
            0.0,
            prev.get("rows_in"),
            prev.get("rows_out"),
            prev.get("outputs", {}),
            prev.get("details", {}),
        )
        ctx.say(f"{label}: unchanged, skipped")
        return
    ctx.say(f"{label}: running")
    result = run_one(ctx, stage, fingerprint)
    ctx.say(f"{label}: done in {result.seconds:.1f}s{_rows_text(result)}")


def run_one(ctx: RunContext, stage: Stage, fingerprint: str) -> StageResult:
    """Run a stage into a temp output, publish it, then record its state."""
    save_stage_state(ctx, stage.name, None)
    final = stage.output(ctx.spec)
    tmp = temp_output(final, ctx.run_id) if final is not None else None
    t0 = time.time()
    try:
        result = stage.run(ctx, tmp)
        if tmp is not None:
            publish_output(tmp, final, ctx.run_id)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(exc, OSError):
            raise
        where = exc.filename or final or ctx.spec.outputs.root
        raise RefreshError(
            f"stage {stage.name}: cannot write {where}: {exc.strerror or exc}"
        ) from None
    # A stage without its own output folder (ingest) changes what it reads: re-fingerprint.
    result.fingerprint = fingerprint if final is not None else stage.fingerprint(ctx)
    result.seconds = round(time.time() - t0, 3)
    ctx.results[stage.name] = result
    files = hash_tree(final) if stage.name == "export" else None
    save_stage_state(
        ctx,
        stage.name,
        {
            "fingerprint": result.fingerprint,
            "rows_in": result.rows_in,
            "rows_out": result.rows_out,
            "outputs": result.outputs,
            "details": result.details,
            "files": files,
            "run_id": ctx.run_id,
        },
    )
    return result


def _rows_text(r: StageResult) -> str:
    if r.rows_in is None and r.rows_out is None:
        return ""
    return f"; rows in {_num(r.rows_in)}, out {_num(r.rows_out)}"


def _num(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


# ---------------------------------------------------------------- the run manifest


def write_run_manifest(
    spec: JobSpec,
    run_id: str,
    started: float,
    ctx: RunContext | None,
    error: BaseException | None = None,
) -> dict:
    """``_refresh/<run_id>.json`` always; ``refresh_manifest.json`` only for a success."""
    results = ctx.results if ctx else {}
    manifest = {
        "run_id": run_id,
        "job": spec.job.name,
        "status": "failed" if error else "completed",
        "error": _error_text(error),
        "started": _iso(started),
        "finished": _iso(time.time()),
        "seconds": round(time.time() - started, 3),
        "lds_dask_version": __version__,
        "spec": {"path": str(spec.path), "sha256": spec.sha256},
        "config": spec.to_dict(),
        "cluster": ctx.inputs.get("client") if ctx else None,
        "input_hashes": results["ingest"].details.get("input_hashes", {})
        if "ingest" in results
        else {},
        "stages": {n: _stage_record(r) for n, r in results.items()},
        "outputs": {f"{n}.{k}": v for n, r in results.items() for k, v in r.outputs.items()},
    }
    try:
        write_json_atomic(spec.outputs.root / STATE_DIR / f"{run_id}.json", manifest)
        if error is None:
            write_json_atomic(spec.outputs.root / LATEST_FILE, manifest)
    except OSError:
        if error is None:
            raise
    return manifest


def _stage_record(r: StageResult) -> dict:
    details = {k: v for k, v in r.details.items() if k != "input_hashes"}
    return {
        "status": r.status,
        "fingerprint": r.fingerprint,
        "seconds": r.seconds,
        "rows_in": r.rows_in,
        "rows_out": r.rows_out,
        "outputs": r.outputs,
        "details": details,
    }


def _error_text(error: BaseException | None) -> str | None:
    if error is None:
        return None
    first = (str(error).strip().splitlines() or [""])[0][:300]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------- the stages


def result(name: str, **kwargs) -> StageResult:
    """A ran stage's result (fingerprint and timing are filled in by :func:`run_one`)."""
    return StageResult(name, "ran", "", **kwargs)


def input_paths(spec: JobSpec) -> dict[str, list[Path]]:
    """raw / survey / ahah inputs: the spec's extracts, or the synth stage's output."""
    if spec.synth is not None:
        out = spec.outputs.synth
        return {
            "raw": [out / "test_records"],
            "survey": [out / "survey_responses"],
            "ahah": [out / "ahah.parquet"],
        }
    i = spec.inputs
    return {
        "raw": list(i.raw),
        "survey": [i.survey] if i.survey else [],
        "ahah": [i.ahah] if i.ahah else [],
    }


def hash_inputs(spec: JobSpec) -> dict[str, str]:
    """sha256 of every input file, by path (what ingest's fingerprint depends on)."""
    from lds_dask.io import file_sha256, list_input_files

    files = [f for paths in input_paths(spec).values() if paths for f in list_input_files(paths)]
    return {str(f): file_sha256(f) for f in files}


def store_digest(store: Path) -> str:
    """What the cube reads: the store manifest's files and partitions (not its run log)."""
    from lds_dask.store import read_manifest

    if not (store / "_manifest.json").exists():
        return "no-store"
    m = read_manifest(store)
    return digest(m.get("files"), m.get("partitions"))


def fingerprint_synth(ctx: RunContext) -> str:
    return digest("synth", ctx.spec.to_dict()["synth"])


def run_synth(ctx: RunContext, tmp: Path) -> StageResult:
    """Generate the synthetic national extracts (test records, survey, AHAH, truth)."""
    from synthetic_gen.generate import generate

    s = ctx.spec.synth
    m = generate(
        tmp,
        scale=s.scale,
        seed=s.seed,
        start=s.start,
        weeks=s.weeks,
        fmt=s.format,
        dirty_rate=s.dirty_rate,
        client=ctx.client,
        progress=ctx.options.progress,
    )
    rows = m["counts"]["test_records"]["rows"] + m["counts"]["survey_responses"]["rows"]
    return result(
        "synth",
        rows_out=rows,
        outputs={"synth": str(ctx.spec.outputs.synth)},
        details={"counts": m["counts"]},
    )


def fingerprint_ingest(ctx: RunContext) -> str:
    """Input hashes + config + the store as it stands (verified against its manifest)."""
    from lds_dask.store import verify_store

    store = ctx.spec.outputs.store
    if (store / "_store.json").exists():
        verify_store(store)
    ctx.inputs["hashes"] = ctx.inputs.get("hashes") or hash_inputs(ctx.spec)
    return digest("ingest", ctx.spec.to_dict()["ingest"], ctx.inputs["hashes"], store_digest(store))


def run_ingest(ctx: RunContext, _tmp: None) -> StageResult:
    """Validate, quarantine, link and partition the inputs into the store (incremental)."""
    from lds_dask.ingest import ingest

    paths, store = input_paths(ctx.spec), ctx.spec.outputs.store
    report = ingest(
        paths["raw"],
        store,
        survey=(paths["survey"] or [None])[0],
        ahah=(paths["ahah"] or [None])[0],
        client=ctx.client,
        max_reject_rate=ctx.spec.ingest.max_reject_rate,
        progress=ctx.options.progress,
    )
    totals = report.totals
    return result(
        "ingest",
        rows_in=totals["rows_in"],
        rows_out=totals["rows_stored"],
        outputs={"store": str(store)},
        details={
            "input_hashes": ctx.inputs["hashes"],
            "run_id": report.run_id,
            "status": report.status,
            "reject_rate": report.reject_rate,
            "rows_quarantined": totals["rows_quarantined"],
        },
    )


def cube_config(spec: JobSpec):
    from lds_dask.cube import CubeConfig

    c = spec.cube
    return CubeConfig(
        people_scope=c.people_scope,
        period_starts=tuple(d.isoformat() for d in c.period_starts),
        period_names=c.period_names,
        n_neighbours=c.n_neighbours,
        bundle_mb=c.bundle_mb,
    )


def fingerprint_cube(ctx: RunContext) -> str:
    return digest("cube", ctx.spec.to_dict()["cube"], store_digest(ctx.spec.outputs.store))


def run_cube(ctx: RunContext, tmp: Path) -> StageResult:
    """Build the all-LA cube; rows in = stored records, rows out = England's test count."""
    from lds_dask.cube import build_cube, open_cube
    from lds_dask.store import read_manifest

    build_cube(
        ctx.spec.outputs.store,
        tmp,
        client=ctx.client,
        config=cube_config(ctx.spec),
        progress=ctx.options.progress,
    )
    ctx.cache.clear()
    parts = read_manifest(ctx.spec.outputs.store).get("partitions", {}).get("records", {})
    total = open_cube(tmp)["total"]["tests"].sel(area="E92000001").sum().compute()
    return result(
        "cube",
        rows_in=sum(p.get("rows", 0) for p in parts.values()),
        rows_out=int(total),
        outputs={"cube": str(ctx.spec.outputs.cube)},
    )


def disclosure_rules(spec: JobSpec):
    from lds_dask.disclosure import DisclosureRules

    d = spec.disclosure
    return DisclosureRules(
        threshold=d.threshold, suppress_zeros=d.suppress_zeros, rounding=d.rounding
    )


def fingerprint_disclosure(ctx: RunContext) -> str:
    return digest("disclosure", ctx.spec.to_dict()["disclosure"], fingerprint_cube(ctx))


def loaded_cube(ctx: RunContext):
    """The cube, read into memory once per run and shared by the stages after it."""
    if "cube" not in ctx.cache:
        from lds_dask.cube import open_cube

        ctx.cache["cube"] = open_cube(ctx.spec.outputs.cube).load()
    return ctx.cache["cube"]


def safe_cube(ctx: RunContext):
    """The disclosure-controlled view of the cube under the job's rules, computed once."""
    if "safe" not in ctx.cache:
        from lds_dask.disclosure import safe_view

        ctx.cache["safe"] = safe_view(loaded_cube(ctx), disclosure_rules(ctx.spec))
    return ctx.cache["safe"]


def run_disclosure(ctx: RunContext, _tmp: None) -> StageResult:
    """Apply the SDC rules to the cube: count cells in, cells published, by status."""
    import numpy as np

    by_status: dict[str, int] = {}
    for node in safe_cube(ctx).subtree:
        for name, var in node.to_dataset(inherit=False).data_vars.items():
            if name in ("tests_status", "people_tested_status"):
                codes, n = np.unique(np.asarray(var.values), return_counts=True)
                for c, k in zip(codes.tolist(), n.tolist(), strict=True):
                    by_status[str(c)] = by_status.get(str(c), 0) + k
    cells = sum(by_status.values())
    hidden = by_status.get("1", 0) + by_status.get("2", 0)
    return result(
        "disclosure",
        rows_in=cells,
        rows_out=cells - hidden,
        details={"count_cells_by_status": by_status},
    )


def fingerprint_export(ctx: RunContext) -> str:
    return digest("export", ctx.spec.to_dict()["export"], fingerprint_disclosure(ctx))


def run_export(ctx: RunContext, tmp: Path) -> StageResult:
    """Write the disclosure-controlled aggregates (the only outward files) + evidence."""
    from lds_dask import export

    export.export_cube(
        loaded_cube(ctx),
        tmp,
        disclosure_rules(ctx.spec),
        formats=ctx.spec.export.formats,
        command="lds-dask refresh",
    )
    files = [p for p in tmp.rglob("*") if p.is_file()]
    return result("export", rows_out=len(files), outputs={"export": str(ctx.spec.outputs.export)})


def fingerprint_view(ctx: RunContext, name: str) -> str:
    """Plots/report: their config, the cube, and the SDC rules when they show the safe view."""
    cfg = ctx.spec.to_dict()[name]
    upstream = fingerprint_disclosure(ctx) if cfg["safe"] else fingerprint_cube(ctx)
    return digest(name, cfg, upstream)


def run_plots(ctx: RunContext, tmp: Path) -> StageResult:
    """Every comparison plot for each LA named in ``[plots] las`` (the safe view if asked)."""
    from lds_dask import plots
    from lds_dask.cli.plots import la_plots

    p = ctx.spec.plots
    tree = safe_cube(ctx) if p.safe else loaded_cube(ctx)
    tmp.mkdir(parents=True)
    written = []
    for la in p.las:
        for stem, obj in la_plots(tree, la, safe=p.safe).items():
            for fmt in p.formats:
                written.append(tmp / f"{la}_{stem}.{fmt}")
                (plots.save_html if fmt == "html" else plots.save_png)(obj, written[-1])
    return result(
        "plots",
        rows_in=len(p.las),
        rows_out=len(written),
        outputs={"plots": str(ctx.spec.outputs.plots)},
    )


def run_report(ctx: RunContext, tmp: Path) -> StageResult:
    """The HTML report pack (one page per LA + index), built as tasks on this run's cluster."""
    from lds_dask import report

    las = list(ctx.spec.report.las) or None
    rows = report.build_report(
        ctx.spec.outputs.cube,
        tmp,
        las=las,
        safe=ctx.spec.report.safe,
        scheduler=ctx.client.scheduler.address,
        progress=ctx.options.progress,
    )
    return result(
        "report",
        rows_in=len(las or ()) or len(rows),
        rows_out=len(rows),
        outputs={
            "report": str(ctx.spec.outputs.report),
            "index": str(ctx.spec.outputs.report / "index.html"),
        },
    )


def _needs_disclosure(spec: JobSpec) -> bool:
    return bool(
        spec.outputs.export
        or (spec.outputs.plots and spec.plots.safe)
        or (spec.outputs.report and spec.report.safe)
    )


STAGES: tuple[Stage, ...] = (
    Stage(
        "synth",
        lambda s: s.synth is not None,
        fingerprint_synth,
        run_synth,
        lambda s: s.outputs.synth,
    ),
    Stage("ingest", lambda s: True, fingerprint_ingest, run_ingest, lambda s: None),
    Stage("cube", lambda s: True, fingerprint_cube, run_cube, lambda s: s.outputs.cube),
    Stage("disclosure", _needs_disclosure, fingerprint_disclosure, run_disclosure, lambda s: None),
    Stage(
        "export",
        lambda s: s.outputs.export is not None,
        fingerprint_export,
        run_export,
        lambda s: s.outputs.export,
    ),
    Stage(
        "plots",
        lambda s: s.outputs.plots is not None,
        lambda c: fingerprint_view(c, "plots"),
        run_plots,
        lambda s: s.outputs.plots,
    ),
    Stage(
        "report",
        lambda s: s.outputs.report is not None,
        lambda c: fingerprint_view(c, "report"),
        run_report,
        lambda s: s.outputs.report,
    ),
)
