"""The one atomic-publication helper: what it refuses to replace, and what it cleans up."""

from __future__ import annotations

import json

import pytest

from lds_dask.runtime.publish import (
    MARKER,
    PublishError,
    check_target,
    marker_kind,
    publishing,
    remove_leftovers,
    write_json_atomic,
)


def tree_of(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def written(tmp_path, name="out", kind="export", text="one") -> object:
    with publishing(tmp_path / name, kind, overwrite=True) as tmp:
        (tmp / "table.csv").write_text(text)
    return tmp_path / name


def test_publishes_a_marked_directory_and_leaves_nothing_beside_it(tmp_path):
    out = written(tmp_path)
    assert (out / "table.csv").read_text() == "one" and marker_kind(out) == "export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert json.loads((out / MARKER).read_text()) == {"kind": "export", "written_by": "lds-dask"}


def test_replaces_only_its_own_kind_of_output_and_only_when_asked(tmp_path):
    out = written(tmp_path)
    with pytest.raises(PublishError, match="already exists .use --overwrite"):
        check_target(out, "export", overwrite=False)
    written(tmp_path, text="two")
    assert (out / "table.csv").read_text() == "two"
    with pytest.raises(
        PublishError, match="holds the output of lds-dask export; plots does not replace it"
    ):
        check_target(out, "plots", overwrite=True)


@pytest.mark.parametrize(
    ("files", "said"),
    [
        (["_store.json", "_manifest.json"], "is an lds-dask ingest store"),
        (["zarr.json"], "is a zarr store"),
        (["part-000.parquet"], f"was not written by lds-dask .no {MARKER} in it"),
    ],
)
def test_a_store_a_cube_or_a_foreign_directory_is_never_replaced(tmp_path, files, said):
    target = tmp_path / "target"
    target.mkdir()
    for name in files:
        (target / name).write_text("precious")
    before = tree_of(target)
    with pytest.raises(PublishError, match=said), publishing(target, "export", True) as tmp:
        (tmp / "table.csv").write_text("x")
    assert tree_of(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]


def test_an_empty_directory_is_replaced_with_overwrite(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(PublishError, match="already exists"):
        check_target(tmp_path / "out", "report", overwrite=False)
    written(tmp_path, kind="report")
    assert marker_kind(tmp_path / "out") == "report"


@pytest.mark.parametrize("where", ["equal", "inside", "containing"])
def test_an_output_overlapping_what_is_read_is_refused(tmp_path, where):
    cube = tmp_path / "data" / "cube.zarr"
    cube.mkdir(parents=True)
    out = {"equal": cube, "inside": cube / "x", "containing": tmp_path / "data"}[where]
    said = {"equal": "is the cube being read", "inside": "is inside", "containing": "contains"}
    with pytest.raises(PublishError, match=said[where]):
        check_target(out, "export", overwrite=True, reads=[("cube", cube)])


def test_a_failed_write_leaves_the_previous_output_and_no_temp_folder(tmp_path):
    out = written(tmp_path)
    with pytest.raises(KeyboardInterrupt), publishing(out, "export", overwrite=True) as tmp:
        (tmp / "table.csv").write_text("half")
        raise KeyboardInterrupt
    assert (out / "table.csv").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_leftovers_of_killed_runs_are_removed_or_restored(tmp_path):
    out = written(tmp_path, name="a[1]")  # glob characters in the name
    partial = tmp_path / ".a[1].partial-0123"
    nested = tmp_path / "..a[1].partial-0123.partial-4567"
    for p in (partial, nested):
        p.mkdir()
        (p / "big.csv").write_text("280 MB of it")
    (tmp_path / "a[1].partial-keep").mkdir()  # not hidden: not ours
    done = remove_leftovers(out)
    assert len(done) == 2 and not partial.exists() and not nested.exists()
    assert (tmp_path / "a[1].partial-keep").is_dir()

    old = tmp_path / ".a[1].old-89ab"
    out.rename(old)  # killed between the two renames of a swap
    assert remove_leftovers(out) == [f"restored {out} from an interrupted run"]
    assert (out / "table.csv").read_text() == "one" and not old.exists()


def test_the_next_publication_removes_a_killed_one(tmp_path):
    partial = tmp_path / ".out.partial-dead"
    partial.mkdir()
    written(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_json_is_replaced_whole(tmp_path):
    path = tmp_path / "d" / "state.json"
    write_json_atomic(path, {"b": 1, "a": 2})
    write_json_atomic(path, {"b": 3, "a": 4}, sort_keys=False)
    assert list(json.loads(path.read_text())) == ["b", "a"]
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]
