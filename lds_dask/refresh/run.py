"""The end-to-end refresh: a job spec run through synth/ingest -> cube -> disclosure -> outputs.

Jobs wire library functions together and hold no logic of their own (DESIGN.md). All
stages share one Dask client. Each stage has a *fingerprint*: a hash of the code version,
its own config and what it reads (input file hashes for ingest, the store manifest for the
cube, the upstream fingerprint after that). A stage whose fingerprint matches the last
successful run, and whose outputs are still there, is skipped, so an incremental refresh
re-runs only what depends on what changed (ingest is itself incremental by file).

Outputs are published atomically (:mod:`lds_dask.runtime.publish`): a stage writes into
``.<name>.partial-<hex>`` beside its output, which is swapped in only when complete and only
over an output of the same kind (its marker file says so), and its state entry is dropped
before it starts and written after, so a killed or failed stage never leaves something
half-written that a later run would take as valid. Outputs must not overlap one another or
the inputs. Every run writes ``<root>/_refresh/<run_id>.json``
and ``<root>/refresh_manifest.json`` (input hashes, config, code version, rows per stage,
timings, outputs).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from lds_dask import __version__
from lds_dask.refresh.jobspec import JobSpec
from lds_dask.refresh.stages import STAGES, input_paths
from lds_dask.refresh.state import (
    LATEST_FILE,
    STATE_DIR,
    RefreshError,
    RefreshOptions,
    RunContext,
    Stage,
    StageResult,
    hash_tree,
    is_current,
    publish_output,
    read_state,
    recover_outputs,
    save_stage_state,
    temp_output,
    write_ordered_json,
)
from lds_dask.runtime.errors import LdsError, describe_unexpected, one_line
from lds_dask.runtime.publish import PublishError, check_disjoint

__all__ = [
    "LATEST_FILE",
    "STATE_DIR",
    "RefreshError",
    "RefreshOptions",
    "hash_tree",
    "read_state",
    "run_refresh",
]

# ---------------------------------------------------------------- running


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def run_refresh(
    spec: JobSpec,
    options: RefreshOptions | None = None,
    say: Callable[[str], None] = print,
    client=None,
) -> dict:
    """Run every enabled stage of ``spec`` on one Dask client; return the run manifest.

    ``client``: an existing ``distributed.Client`` (e.g. from dask-gateway); otherwise one
    is made by :func:`lds_dask.runtime.cluster.get_client` from the options and ``[cluster]``.
    """
    from contextlib import ExitStack

    options = options or RefreshOptions()
    run_id, started = new_run_id(), time.time()
    root = spec.outputs.root
    _check_root(root)
    check_output_paths(spec)
    for line in recover_outputs([s.output(spec) for s in STAGES if s.output(spec)]):
        say(line)
    ctx = None
    try:
        with ExitStack() as stack:
            ctx = RunContext(
                spec,
                options,
                lambda: _open_client(stack, ctx, client),
                run_id,
                read_state(spec),
                say,
            )
            run_stages(ctx, [s for s in STAGES if s.enabled(spec)])
    except BaseException as exc:
        write_run_manifest(spec, run_id, started, ctx, error=exc)
        raise
    return write_run_manifest(spec, run_id, started, ctx)


def _open_client(stack, ctx: RunContext, client=None):
    """The given client, or one from ``--scheduler`` / ``[cluster]`` / a LocalCluster, kept
    open until the run ends; says where it is and the dashboard link."""
    from lds_dask.runtime.cluster import get_client

    spec, options = ctx.spec, ctx.options
    if client is None:
        client = stack.enter_context(
            get_client(
                options.scheduler or spec.cluster.scheduler or None,
                options.n_workers or spec.cluster.n_workers or None,
                spec.cluster.memory_limit or None,
                quiet=True,
            )
        )
    ctx.inputs["client"] = _client_info(client)
    ctx.say(f"Dask: {ctx.inputs['client']}; {_dashboard(client)}")
    return client


def _dashboard(client) -> str:
    services = client.scheduler_info().get("services", {})
    return f"dashboard {client.dashboard_link}" if "dashboard" in services else "no dashboard"


def _check_root(root: Path) -> None:
    """A clear one-line error when the output root cannot be a writable directory."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RefreshError(f"output root {root}: cannot write ({exc.strerror or exc})") from None


def check_output_paths(spec: JobSpec) -> None:
    """Refuse a spec whose outputs overlap each other or its inputs (one would replace or
    delete the other): each must be neither equal to, inside nor containing another."""
    named = [("store", spec.outputs.store)] + [
        (s.name, s.output(spec)) for s in STAGES if s.output(spec)
    ]
    inputs = [] if spec.synth else [("input", p) for ps in input_paths(spec).values() for p in ps]
    try:
        for i, (_, path) in enumerate(named):
            check_disjoint(path, named[i + 1 :] + inputs, role="of this job")
    except PublishError as exc:
        raise RefreshError(f"[outputs] {exc}") from None


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
    try:
        tmp = temp_output(final, stage.name) if final is not None else None
    except PublishError as exc:
        raise RefreshError(f"stage {stage.name}: {exc}") from None
    t0 = time.time()
    try:
        result = stage.run(ctx, tmp)
        if tmp is not None:
            publish_output(tmp, final, stage.name)
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
        write_ordered_json(spec.outputs.root / STATE_DIR / f"{run_id}.json", manifest)
        if error is None:
            write_ordered_json(spec.outputs.root / LATEST_FILE, manifest)
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
    """An expected failure's one line; a bug's type and location only (never its text)."""
    if error is None:
        return None
    if not isinstance(error, LdsError):
        return describe_unexpected(error)
    return f"{type(error).__name__}: {one_line(error)[:300]}"


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")
