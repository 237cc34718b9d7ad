"""``lds-dask export`` destroys nothing by accident.

Attacks from issue 20: ``--out STORE --overwrite`` deleted the store, and ``--out`` equal to
the cube was accepted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner

from lds_dask.cli.export import command as export_command
from lds_dask.cube.write import quiet_zarr
from lds_dask.runtime.publish import MARKER
from lds_dask.store.handmade import record_frame, write_store
from tests.integration.test_export_files import make_tree

PERSON = "PID-7f3a"  # the planted person ids all start with this


def hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def write_cube(tree: xr.DataTree, path: Path) -> Path:
    with quiet_zarr():
        tree.to_zarr(path)
    return path


@pytest.fixture(scope="module")
def cube_path(tmp_path_factory) -> Path:
    return write_cube(make_tree(), tmp_path_factory.mktemp("cube") / "cube.zarr")


def export(cube: Path, out: Path, *args: str):
    return CliRunner().invoke(export_command, ["--cube", str(cube), "--out", str(out), *args])


def assert_refused(result, said: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and said in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_overwrite_refuses_a_store_and_leaves_it_intact(cube_path, tmp_path):
    row = dict(test_id="t1", person_id="p1", la_code="E06000001", result="NEGATIVE")
    store = write_store(tmp_path / "store", record_frame([row | {"specimen_date": None}]))
    (store / "quarantine").mkdir()
    (store / "quarantine" / "run.parquet").write_bytes(b"rejected rows")
    before = hashes(store)
    assert_refused(export(cube_path, store, "--overwrite"), "is an lds-dask ingest store")
    assert hashes(store) == before


@pytest.mark.parametrize("where", ["equal", "inside", "containing"])
def test_out_overlapping_the_cube_is_refused(tmp_path, where):
    cube = write_cube(make_tree(), tmp_path / "work" / "cube.zarr")
    before = hashes(cube)
    out = {"equal": cube, "inside": cube / "tables", "containing": tmp_path / "work"}[where]
    said = {"equal": "is the cube being read", "inside": "is inside", "containing": "contains"}
    assert_refused(export(cube, out, "--overwrite"), said[where])
    assert hashes(cube) == before and sorted(p.name for p in cube.parent.iterdir()) == ["cube.zarr"]


def test_overwrite_refuses_an_input_or_a_foreign_directory(cube_path, tmp_path):
    for name, files in (("inputs", ["week=1/part-000.parquet"]), ("notes", ["README.txt"])):
        target = tmp_path / name
        for f in files:
            (target / f).parent.mkdir(parents=True, exist_ok=True)
            (target / f).write_text("precious")
        before = hashes(target)
        assert_refused(export(cube_path, target, "--overwrite"), "was not written by lds-dask")
        assert hashes(target) == before


def test_overwrite_replaces_an_earlier_export_only(cube_path, tmp_path):
    out = tmp_path / "out"
    assert export(cube_path, out).exit_code == 0
    assert json.loads((out / MARKER).read_text())["kind"] == "export"
    assert (out / "checksums" / f"{MARKER}.sha256").is_file()  # the marker is checksummed too
    assert_refused(export(cube_path, out), "already exists (use --overwrite")
    (out / "stale.csv").write_text("from an older export")
    assert export(cube_path, out, "--overwrite").exit_code == 0
    assert not (out / "stale.csv").exists() and (out / "sex.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_leftover_partial_folder_is_removed_by_the_next_export(cube_path, tmp_path):
    partial = tmp_path / ".out.partial-5eed"
    partial.mkdir()
    (partial / "lsoa.csv").write_bytes(b"x" * 1000)
    assert export(cube_path, tmp_path / "out").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
