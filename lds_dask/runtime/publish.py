"""Atomic publication of an output directory, and the checks that keep it from destroying data.

Every command that writes a directory (export, plots, report, the cube, each refresh stage)
publishes it the same way:

1. refuse a target that would destroy something (:func:`check_target`): an ``out`` equal to,
   inside or containing what the command reads; an existing directory unless ``overwrite``
   was asked for; and, even then, any non-empty directory that does not carry this module's
   marker file for the same kind of output (a store, a cube, an input, a foreign folder);
2. remove what an earlier killed run left beside ``out`` (:func:`remove_leftovers`);
3. write everything into a hidden sibling ``.<name>.partial-<hex>`` with the marker
   (:data:`MARKER`) in it;
4. rename the old ``out`` aside (``.<name>.old-<hex>``), the new one in, delete the old.

A run killed during 3 leaves only the hidden ``.partial-*`` folder, which the next run
removes; killed between the two renames of 4, it leaves ``out`` missing and ``.old-*`` beside
it, which the next run puts back. So ``out`` is always either the previous complete output
or the new complete one. The ingest store is a multi-directory commit with its own protocol
(:mod:`lds_dask.store.layout`); it shares :func:`write_json_atomic` with this module.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lds_dask.runtime.errors import BadInputError

MARKER = ".lds-dask-output.json"
PARTIAL, OLD = "partial", "old"
KINDS = ("export", "plots", "report", "cube", "synth")
# What an unmarked directory is, told apart for the error message (the first match wins).
RECOGNISED = (
    ("_store.json", "an lds-dask ingest store"),
    ("_manifest.json", "an lds-dask ingest store"),
    ("zarr.json", "a zarr store (a cube?)"),
    (".zgroup", "a zarr store (a cube?)"),
)


class PublishError(BadInputError, ValueError):
    """An output directory that cannot be published without destroying something."""


def write_json_atomic(path: Path, obj: dict, sort_keys: bool = True) -> None:
    """Write JSON so a reader sees either the old file or the complete new one.

    ``sort_keys=False`` keeps the dict's order (a run manifest lists stages as they ran)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=sort_keys, default=str))
    os.replace(tmp, path)


def write_marker(directory: Path, kind: str) -> None:
    """Mark ``directory`` as an output of ``kind`` written by lds-dask (deterministic bytes)."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    text = json.dumps({"kind": kind, "written_by": "lds-dask"}, sort_keys=True) + "\n"
    (directory / MARKER).write_text(text, encoding="utf-8")


def marker_kind(directory: Path) -> str | None:
    """The kind recorded in ``directory``'s marker, or None when it has no readable one."""
    try:
        return json.loads((directory / MARKER).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def check_disjoint(out: Path, reads: Iterable[tuple[str, Path]], role: str = "being read") -> None:
    """Refuse an ``out`` equal to, inside or containing any ``(what, path)`` (``role`` says
    why that path matters: it is read, or another output)."""
    target = _absolute(out)
    for what, path in reads:
        source = _absolute(path)
        if target == source:
            raise PublishError(f"{out}: is the {what} {role}; choose another output")
        if source in target.parents:
            raise PublishError(f"{out}: is inside the {what} {role} ({path})")
        if target in source.parents:
            raise PublishError(f"{out}: contains the {what} {role} ({path})")


def check_target(
    out: Path, kind: str, overwrite: bool, reads: Iterable[tuple[str, Path]] = ()
) -> None:
    """Raise :class:`PublishError` unless publishing ``kind`` at ``out`` destroys nothing:
    ``out`` overlaps nothing in ``reads``, and is absent, or (with ``overwrite``) empty or
    marked as an output of the same ``kind``."""
    out = Path(out)
    check_disjoint(out, reads)
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise PublishError(f"{out}: exists and is not a directory; choose another output")
    found = marker_kind(out)
    if found != kind and (found is not None or any(out.iterdir())):
        raise PublishError(f"{out}: {_described(out, found)}; {kind} does not replace it")
    if not overwrite:
        raise PublishError(f"{out}: already exists (use --overwrite to replace it)")


def _described(out: Path, found: str | None) -> str:
    if found is not None:
        return f"holds the output of lds-dask {found}"
    for name, what in RECOGNISED:
        if (out / name).exists():
            return f"is {what}"
    return f"was not written by lds-dask (no {MARKER} in it)"


def _absolute(path: Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def remove_leftovers(out: Path) -> list[str]:
    """Clear what killed runs left beside ``out``; say what was done.

    ``.<name>.partial-*`` folders are unfinished outputs (deleted); a ``.<name>.old-*`` folder
    is the previous output moved aside by a run killed mid-swap: put back when ``out`` is
    missing, else deleted."""
    out, done = Path(out), []
    for old in _siblings(out, OLD):
        if not out.exists() and marker_kind(old) is not None:
            os.rename(old, out)
            done.append(f"restored {out} from an interrupted run")
        else:
            _remove(old)
    for partial in _siblings(out, PARTIAL):
        _remove(partial)
        done.append(f"removed {partial.name}, left by an interrupted run")
    return done


def _siblings(out: Path, tag: str) -> list[Path]:
    """``.<name>.<tag>-*`` beside ``out``, and those of a writer that published into a
    temp folder of ours (``..<name>.partial-X.partial-Y``). Matched as text, not as a glob
    pattern: a name may hold glob characters."""
    prefix = f"{out.name}.{tag}-"
    if not out.parent.is_dir():
        return []
    return sorted(
        p
        for p in out.parent.iterdir()
        if p.name.startswith(".") and p.name.lstrip(".").startswith(prefix)
    )


def partial_path(out: Path) -> Path:
    """A fresh hidden sibling of ``out`` to write into (not created)."""
    out = Path(out)
    return out.parent / f".{out.name}.{PARTIAL}-{uuid.uuid4().hex[:12]}"


def swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` to ``out``, replacing an existing ``out`` only now."""
    old = out.parent / f".{out.name}.{OLD}-{uuid.uuid4().hex[:12]}"
    if out.exists():
        os.rename(out, old)
    os.rename(tmp, out)
    if old.exists():
        _remove(old)


@contextmanager
def publishing(
    out: str | Path,
    kind: str,
    overwrite: bool = False,
    reads: Iterable[tuple[str, Path]] = (),
) -> Iterator[Path]:
    """Yield a hidden temp directory (holding the marker) that becomes ``out`` on success.

    Checks the target first (:func:`check_target`) and clears earlier leftovers; on any
    error, or a Ctrl-C, the temp directory is removed and ``out`` is left as it was."""
    reads = list(reads)
    check_target(Path(out), kind, overwrite, reads)
    out = Path(os.path.abspath(out))  # "." has no name to put a sibling beside
    remove_leftovers(out)
    tmp = partial_path(out)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:  # name the output asked for, not our hidden temp folder
        raise OSError(exc.errno, exc.strerror, str(out)) from None
    try:
        write_marker(tmp, kind)  # first, so a writer that lists its files sees it
        yield tmp
        write_marker(tmp, kind)  # again: a writer may have cleared the folder (zarr mode="w")
        swap_in(tmp, out)
    finally:
        if tmp.exists():
            _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
