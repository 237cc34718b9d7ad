"""``lds-dask cube`` refuses a store that a killed commit or a hand left inconsistent.

The attack of issue 20: with some partitions swapped in but the manifest not (an ingest
commit killed midway), ``cube`` exited 0 and counted about twice the tests the manifest
lists. Here a real commit (``layout.commit_run``) of partitions holding every row twice is
stopped after some of its renames, as a SIGKILL would stop it; the cube is refused while
the commit is pending, refused when its record is removed too (only the bytes tell), and
built, counting exactly the manifest's rows, once the next ingest's recovery completes it.
"""

from __future__ import annotations

import json
import os
import shutil

import polars as pl
import pytest
from click.testing import CliRunner

from lds_dask.cli import main
from lds_dask.cube.build import open_cube
from lds_dask.runtime.hashing import file_sha256
from lds_dask.store import layout
from lds_dask.store.read import Store

SWAPPED = 5  # partitions renamed in before the kill


class Killed(BaseException):
    """Stands for the SIGKILL: nothing after it runs, no handler sees it."""


def stored_rows(store) -> int:
    """Rows in the partition files on disk (what a reader that trusts the disk counts)."""
    return sum(
        pl.scan_parquet(p).select(pl.len()).collect().item()
        for p in sorted(store.glob("records/la_code=*/part-0.parquet"))
    )


def manifest_rows(store) -> int:
    parts = layout.read_manifest(store)["partitions"]["records"]
    return sum(e["rows"] for e in parts.values())


def kill_commit_midway(store, monkeypatch) -> None:
    """Commit a run that doubles every LA's rows; die after ``SWAPPED`` partitions are in."""
    manifest, run_dir = layout.read_manifest(store), store / layout.TMP_DIR / "run2"
    changes = []
    for code, entry in sorted(manifest["partitions"]["records"].items()):
        doubled = pl.concat([pl.read_parquet(store / entry["file"])] * 2)
        (run_dir / "out" / entry["file"]).parent.mkdir(parents=True)
        doubled.write_parquet(run_dir / "out" / entry["file"])
        sha = file_sha256(run_dir / "out" / entry["file"])
        part = {"status": "written", "file": entry["file"], "sha256": sha, "rows": doubled.height}
        changes.append(("records", code, part))
    new, replace, remove = layout.updated_manifest(manifest, "run2", {}, changes)
    renames, real_rename = [], os.rename

    def rename_then_die(src, dst):
        if len(renames) == 2 * SWAPPED:  # each partition: old aside, new in
            raise Killed
        renames.append(dst)
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename_then_die)
    with pytest.raises(Killed):
        layout.commit_run(store, run_dir, new, replace, remove)
    monkeypatch.setattr(os, "rename", real_rename)


def run_cube(store, out, client):
    args = ["cube", "--store", str(store), "--out", str(out), "--quiet"]
    return CliRunner().invoke(main, [*args, "--scheduler", client.scheduler.address])


def assert_refused(result, said: str, person_ids: list[str]) -> None:
    assert result.exit_code != 0, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and said in errors[0], result.output
    assert not any(pid in result.output for pid in person_ids)


@pytest.fixture
def store(reference, tmp_path):
    shutil.copytree(reference / "store", tmp_path / "store")
    return tmp_path / "store"


def some_person_ids(store) -> list[str]:
    first = sorted(store.glob("records/la_code=*/part-0.parquet"))[0]
    return pl.read_parquet(first, columns=["person_id"])["person_id"].head(50).to_list()


def test_a_commit_killed_midway_is_refused_then_completed(
    store, local_client, tmp_path, monkeypatch
):
    ids = some_person_ids(store)
    before = manifest_rows(store)
    kill_commit_midway(store, monkeypatch)
    assert manifest_rows(store) == before < stored_rows(store)  # the disk disagrees

    out = tmp_path / "cube.zarr"
    assert_refused(run_cube(store, out, local_client), "an ingest commit was interrupted", ids)
    assert not out.exists() and not list(tmp_path.glob(".cube.zarr.*"))

    layout.recover_store(store)  # what the next `lds-dask ingest` does first: roll forward
    assert run_cube(store, out, local_client).exit_code == 0
    tests = open_cube(out)["total"]["tests"].sel(area="E92000001").sum().item()
    assert tests == manifest_rows(store) == stored_rows(store) == 2 * before


def test_partitions_swapped_in_without_the_manifest_are_refused(
    store, local_client, tmp_path, monkeypatch
):
    """The attack as reported: no commit record left to tell; only the bytes do."""
    ids = some_person_ids(store)
    kill_commit_midway(store, monkeypatch)
    shutil.rmtree(store / layout.TMP_DIR)
    Store(store)  # the structure is intact: the same partitions, one file each
    out = tmp_path / "cube.zarr"
    result = run_cube(store, out, local_client)
    assert_refused(result, "sha256 differs from the manifest (file changed or corrupted)", ids)
    assert "partition records/la_code=E0" in result.output
    assert not out.exists() and not list(tmp_path.glob(".cube.zarr.*"))


def test_an_altered_partition_file_is_refused(store, local_client, tmp_path):
    ids = some_person_ids(store)
    entry = layout.read_manifest(store)["partitions"]["records"]["E08000025"]
    victim = store / entry["file"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    victim.write_bytes(bytes(data))
    result = run_cube(store, tmp_path / "cube.zarr", local_client)
    assert_refused(result, "partition records/la_code=E08000025 sha256 differs", ids)


def test_a_partition_the_manifest_does_not_list_is_refused(store, local_client, tmp_path):
    manifest = json.loads((store / layout.MANIFEST_FILE).read_text())
    dropped = sorted(manifest["partitions"]["records"])[-1]
    del manifest["partitions"]["records"][dropped]
    (store / layout.MANIFEST_FILE).write_text(json.dumps(manifest))
    result = run_cube(store, tmp_path / "cube.zarr", local_client)
    assert_refused(result, "1 partition(s) under records/ are not in the manifest", [])
