"""The partitioned store on disk: format marker, manifest, atomic commit, recovery, checks.

Readers trust only what ``_manifest.json`` lists. A run writes everything under
``STORE/_tmp/<run_id>/out/`` (same relative layout as the store), then commits:

1. write ``_tmp/<run_id>/_commit.json`` (the new manifest plus the paths to move): the
   commit point, itself written atomically (temp file + ``os.replace``);
2. move each replaced path aside into ``_tmp/<run_id>/old/`` and rename the new one in;
3. swap ``_manifest.json`` (temp file + ``os.replace``) and delete ``_tmp/<run_id>``.

A run killed before step 1 leaves the store untouched and its temp area is deleted by the
next run (roll back). A run killed after step 1 is rolled forward by the next run (every
move is idempotent). :func:`verify_store` refuses a store with a pending commit, so a
reader never sees a half-applied one.

The checks a reader makes before trusting the store live here too
(:func:`check_committed`, :func:`check_partition_set`, :func:`check_partition_sha256`);
:class:`lds_dask.store.read.Store` runs them on open and on every partition it reads.
``write_json_atomic`` (re-exported from :mod:`lds_dask.runtime.publish`) writes the manifest
and the run reports.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

from lds_dask import __version__
from lds_dask.runtime.errors import BadInputError
from lds_dask.runtime.hashing import file_sha256
from lds_dask.runtime.publish import write_json_atomic as write_json_atomic

FORMAT_VERSION = 1
STORE_FILE, MANIFEST_FILE, TMP_DIR, COMMIT_FILE = (
    "_store.json",
    "_manifest.json",
    "_tmp",
    "_commit.json",
)
PART_FILE = "part-0.parquet"
TABLES = ("records", "survey")  # the partitioned tables (folders named by their subdir)


class StoreError(BadInputError, ValueError):
    """The store is unusable: missing, not a store, wrong format version, interrupted
    commit, or a partition that differs from the manifest. Messages name the store and the
    partition, never a record value."""


def partition_path(subdir: str, la_code: str) -> str:
    """Relative path of one LA partition file, e.g. ``records/la_code=E06000001/part-0.parquet``."""
    return f"{subdir}/la_code={la_code}/{PART_FILE}"


def open_store(store: Path, create: bool = False) -> dict:
    """Check ``_store.json`` (creating it when asked); raise :class:`StoreError` on mismatch."""
    meta_path = store / STORE_FILE
    if not meta_path.exists():
        if not create:
            raise StoreError(f"{store}: not a store (no {STORE_FILE}; run `lds-dask ingest`)")
        if store.exists() and any(p for p in store.iterdir() if p.name != TMP_DIR):
            raise StoreError(f"{store}: directory is not empty and is not an lds-dask store")
        meta = {
            "format_version": FORMAT_VERSION,
            "lds_dask_version": __version__,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        write_json_atomic(meta_path, meta)
        return meta
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        raise StoreError(f"{meta_path}: unreadable store marker") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise StoreError(
            f"{store}: store format_version {meta.get('format_version')!r} was "
            f"written by an incompatible lds-dask (this one reads {FORMAT_VERSION})"
        )
    return meta


def read_manifest(store: Path) -> dict:
    """The committed manifest, or an empty one for a new store."""
    path = store / MANIFEST_FILE
    if not path.exists():
        return {"format_version": FORMAT_VERSION, "files": {}, "partitions": {}, "runs": []}
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise StoreError(f"{path}: manifest is not valid JSON") from None


def updated_manifest(
    manifest: dict, run_id: str, file_entries: dict, changes: list[tuple[str, str, dict]]
) -> tuple[dict, list[str], list[str]]:
    """The manifest after a run, plus the partition directories to replace and to remove.

    ``changes`` holds ``(subdir, la_code, result)`` with result status written/removed/unchanged.
    """
    new = {
        **manifest,
        "files": {
            **manifest["files"],
            **{p: {**e, "run_id": run_id} for p, e in file_entries.items()},
        },
        "partitions": {k: dict(v) for k, v in manifest["partitions"].items()},
        "runs": [*manifest["runs"], run_id],
    }
    replace, remove = [], []
    for subdir, la_code, part in changes:
        parts, rel = new["partitions"].setdefault(subdir, {}), f"{subdir}/la_code={la_code}"
        if part["status"] == "written":
            parts[la_code] = {k: part[k] for k in ("file", "sha256", "rows")}
            replace.append(rel)
        elif part["status"] == "removed":
            parts.pop(la_code, None)
            remove.append(rel)
    return new, replace, remove


def commit_run(
    store: Path, run_dir: Path, manifest: dict, replace: list[str], remove: list[str]
) -> None:
    """Atomically publish ``run_dir/out`` into ``store`` (see the module docstring)."""
    record = {"manifest": manifest, "replace": sorted(replace), "remove": sorted(remove)}
    write_json_atomic(run_dir / COMMIT_FILE, record)
    apply_commit(store, run_dir)


def apply_commit(store: Path, run_dir: Path) -> None:
    """Apply (or finish applying) a written commit record; safe to repeat after a kill."""
    record = json.loads((run_dir / COMMIT_FILE).read_text())
    for rel in record["replace"]:
        src, dst = run_dir / "out" / rel, store / rel
        if src.exists():
            _move_aside(dst, run_dir / "old" / rel)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.rename(src, dst)
    for rel in record["remove"]:
        _move_aside(store / rel, run_dir / "old" / rel)
    write_json_atomic(store / MANIFEST_FILE, record["manifest"])
    shutil.rmtree(run_dir)


def _move_aside(path: Path, parking: Path) -> None:
    if not path.exists():
        return
    if parking.exists():
        shutil.rmtree(parking) if parking.is_dir() else parking.unlink()
    parking.parent.mkdir(parents=True, exist_ok=True)
    os.rename(path, parking)


def recover_store(store: Path) -> list[str]:
    """Finish committed runs and delete the temp areas of uncommitted ones; say which."""
    done = []
    tmp = store / TMP_DIR
    for run_dir in sorted(tmp.iterdir()) if tmp.is_dir() else []:
        if (run_dir / COMMIT_FILE).exists():
            apply_commit(store, run_dir)
            done.append(f"completed the interrupted commit of run {run_dir.name}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
            done.append(f"removed the temp area of interrupted run {run_dir.name}")
    return done


def verify_store(store: str | Path) -> None:
    """Raise :class:`StoreError` naming the partition when a file differs from the manifest.

    Checks the format version, that no commit is pending, that the partitions on disk are
    exactly those the manifest lists, and every listed partition's sha256 (the whole store
    is read: the cube checks each partition as it reads it instead, see ``Store``).
    """
    store = Path(store)
    open_store(store)
    check_committed(store)
    partitions = read_manifest(store).get("partitions", {})
    check_partition_set(store, partitions)
    for subdir, parts in partitions.items():
        for la_code, entry in parts.items():
            check_partition_sha256(
                store, subdir, la_code, entry, file_sha256(store / entry["file"])
            )


def check_committed(store: Path) -> None:
    """Refuse a store whose last ingest commit was interrupted (partitions half swapped)."""
    tmp = store / TMP_DIR
    if tmp.is_dir() and any((d / COMMIT_FILE).exists() for d in tmp.iterdir()):
        raise StoreError(
            f"{store}: an ingest commit was interrupted; rerun `lds-dask ingest` "
            "on this store to complete it"
        )


def check_partition_set(store: Path, partitions: dict) -> None:
    """The partition folders and files on disk must be exactly what the manifest lists.

    A listed partition that is missing, a folder the manifest does not list, a listed file
    with an unexpected name or a stray file beside it are refused: each means the store was
    changed outside a commit."""
    for subdir in sorted({*TABLES, *partitions}):
        parts = partitions.get(subdir, {})
        for la_code, entry in parts.items():
            where = f"{store}: partition {subdir}/la_code={la_code}"
            if not isinstance(entry, dict) or entry.get("file") != partition_path(subdir, la_code):
                raise StoreError(f"{where}: the manifest entry is not in the store layout")
            folder = store / subdir / f"la_code={la_code}"
            found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
            if PART_FILE not in found:
                raise StoreError(f"{where} is missing")
            if found != [PART_FILE]:
                raise StoreError(f"{where} holds {len(found) - 1} file(s) not in the manifest")
        _check_unlisted(store, subdir, parts)


def check_partition_sha256(store: Path, subdir: str, la_code: str, entry: dict, sha: str) -> None:
    """Refuse a partition whose bytes hash to ``sha`` when the manifest records another."""
    if sha != entry.get("sha256"):
        raise StoreError(
            f"{store}: partition {subdir}/la_code={la_code} sha256 differs "
            "from the manifest (file changed or corrupted)"
        )


def _check_unlisted(store: Path, subdir: str, parts: dict) -> None:
    listed = {f"la_code={code}" for code in parts}
    base = store / subdir
    extra = sorted(p.name for p in base.iterdir() if p.name not in listed) if base.is_dir() else []
    if extra:
        raise StoreError(
            f"{store}: {len(extra)} partition(s) under {subdir}/ are not in the "
            f"manifest, first {extra[0]}"
        )
