"""Refresh state: stage results, fingerprints, the state file and atomic publication.

A stage's *fingerprint* hashes the code version, its config and what it reads; its state
entry is dropped before it runs and written after it succeeds. Outputs are published with
the shared helpers of :mod:`lds_dask.runtime.publish`: written into a hidden temp sibling,
marked as the stage's kind of output and swapped in by renames, so a killed run never leaves
something half-written that a later run would take as valid, and a stage never replaces a
directory it did not write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lds_dask import __version__
from lds_dask.refresh.jobspec import JobSpec
from lds_dask.runtime.errors import WriteFailedError
from lds_dask.runtime.publish import (
    check_target,
    partial_path,
    remove_leftovers,
    swap_in,
    write_json_atomic,
    write_marker,
)

STATE_DIR, STATE_FILE, LATEST_FILE = "_refresh", "state.json", "refresh_manifest.json"


class RefreshError(WriteFailedError, RuntimeError):
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
    """Shared by the stages of one run: spec, client, previous state, results so far.

    The Dask client is opened by ``open_client`` on first use, so a refresh whose stages
    are all unchanged starts no cluster at all.
    """

    spec: JobSpec
    options: RefreshOptions
    open_client: Callable[[], object]
    run_id: str
    state: dict
    say: Callable[[str], None]
    results: dict[str, StageResult] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    cache: dict[str, object] = field(default_factory=dict)  # the loaded cube, its safe view
    _client: object = None

    @property
    def client(self):
        """The run's one Dask client (opened now if no stage has needed it yet)."""
        if self._client is None:
            self._client = self.open_client()
        return self._client


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
    from lds_dask.runtime.hashing import file_sha256

    return {
        p.relative_to(root).as_posix(): file_sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- atomic publication


def temp_output(final: Path, kind: str) -> Path:
    """A fresh hidden sibling of ``final`` to write into (not created), after checking that
    ``final`` is absent or an output of this ``kind`` (so never a store, an input or a
    foreign folder)."""
    check_target(final, kind, overwrite=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    return partial_path(final)


def publish_output(tmp: Path, final: Path, kind: str) -> None:
    """Mark ``tmp`` as the stage's output and swap it in for ``final`` (each step a rename)."""
    write_marker(tmp, kind)
    swap_in(tmp, final)


def recover_outputs(outputs: list[Path]) -> list[str]:
    """After a killed run: restore outputs moved aside, delete unfinished temp folders."""
    return [line for final in outputs for line in remove_leftovers(final)]


def write_ordered_json(path: Path, obj: dict) -> None:
    """Like :func:`write_json_atomic` (old or complete new file, never half), but keeping
    key order, so a run manifest lists its stages in the order they ran."""
    write_json_atomic(path, obj, sort_keys=False)


def result(name: str, **kwargs) -> StageResult:
    """A ran stage's result (fingerprint and timing are filled in by :func:`run_one`)."""
    return StageResult(name, "ran", "", **kwargs)
