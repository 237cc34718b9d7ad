"""``lds-dask export`` destroys nothing by accident and publishes no label that is data.

Attacks from issue 20: ``--out STORE --overwrite`` deleted the store, ``--out`` equal to the
cube was accepted, and a hand-made cube whose category labels were person ids (every cell
12, so nothing suppressed) was exported as lines of ids.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from lds_dask.cli.export import command as export_command
from lds_dask.cube.write import quiet_zarr
from lds_dask.outputs.export import export_cube
from lds_dask.runtime.errors import ExitCode
from lds_dask.runtime.publish import MARKER
from lds_dask.sdc.labels import check_labels
from lds_dask.sdc.margins import DisclosureError
from lds_dask.sdc.rules import DisclosureRules
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


def assert_refused(result, said: str, code: int = ExitCode.BAD_INPUT) -> None:
    assert result.exit_code == code, result.output
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


AREAS = ["E07000008", "E07000009", "E92000001"]
NAMES = ["Cambridge", "East Cambridgeshire", "England"]
WEEKS = pd.date_range("2021-01-04", periods=2, freq="7D").values


def labelled_tree(dim="sex", labels=("F", "M", "U"), areas=AREAS, names=NAMES, weeks=WEEKS):
    """One node of counts, every cell 12 (nothing small, so nothing suppressed)."""
    cells = np.full((len(areas), len(weeks), len(labels)), 12, dtype=np.int64)
    node = xr.Dataset(
        {m: (("area", "week", dim), cells) for m in ("people_positive", "people_tested", "tests")},
        coords={
            "area": list(areas),
            "week": weeks,
            dim: list(labels),
            "area_name": ("area", list(names)),
            "area_type": ("area", ["ltla", "ltla", "country"]),
        },
    )
    return xr.DataTree.from_dict({"/": xr.Dataset(), f"/{dim}": node})


PERSON_IDS = [f"{PERSON}-{i:04d}" for i in range(40)]


@pytest.mark.parametrize("dim", ["sex", "person"])
def test_person_ids_as_category_labels_are_never_exported(tmp_path, dim):
    """The attack of issue 20: labels that are person ids, all cells 12."""
    cube = write_cube(labelled_tree(dim, PERSON_IDS), tmp_path / "cube.zarr")
    before = hashes(tmp_path)
    result = export(cube, tmp_path / "out", "--format", "csv,parquet,xlsx")
    expected = "40 of 40 sex labels are not declared" if dim == "sex" else "dim person is not"
    assert_refused(result, expected, ExitCode.DISCLOSURE_REFUSED)
    assert PERSON not in result.output
    assert hashes(tmp_path) == before  # nothing written: no out, no partial folder


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"areas": [PERSON, *AREAS[1:]]}, "sex: 1 of 3 area labels are not declared"),
        ({"names": [PERSON, *NAMES[1:]]}, "sex: 1 of 3 area_name labels differ"),
        ({"weeks": [PERSON, "x"]}, "sex: 2 of 2 week labels are not dates"),
        ({"dim": "lsoa_period", "labels": ["wave_1"]}, "dim lsoa_period is not a declared"),
    ],
)
def test_area_codes_names_and_weeks_are_labels_too(change, said):
    with pytest.raises(DisclosureError, match=said) as info:
        check_labels(labelled_tree(**change))
    assert PERSON not in str(info.value)


def test_the_untouched_tree_passes():
    check_labels(labelled_tree())  # so the failures above are the changes, not the tree
    check_labels(make_tree())


def test_a_real_cube_passes_the_label_check(tmp_path):
    """Every label of a cube built by lds-dask is declared (the check refuses no real cube)."""
    import datetime as dt

    from lds_dask.cube.build import build_cube, open_cube

    rows = [
        dict(
            test_id=f"t{i}",
            person_id=f"p{i}",
            la_code=["E06000001", "E08000035"][i % 2],
            lsoa11_code=["E01011950", None][i % 2],
            specimen_date=dt.date(2020, 10, 5 + i % 9),
            result="POSITIVE" if i % 3 == 0 else "NEGATIVE",
        )
        for i in range(60)
    ]
    store = write_store(tmp_path / "store", record_frame(rows))
    cube = open_cube(build_cube(store, tmp_path / "cube.zarr", progress=False))
    check_labels(cube)
    out = export_cube(cube, tmp_path / "export", DisclosureRules(), ("csv",))
    assert (out / "lsoa.csv").is_file()
