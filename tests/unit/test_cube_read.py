"""open_cube reads a store exactly as xarray's zarr backend would, without zarr-python.

The reference is ``xr.open_datatree(engine="zarr")`` plus open_cube's coordinate handling
(the area coordinates read once from the root and set on every node). Stores in a layout
this version cannot read raise a one-line ``CubeError``.
"""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest
import xarray as xr
import zarr

from lds_dask.cube.build import AREA_COORDS, CubeError, build_cube, open_cube
from lds_dask.cube.write import quiet_zarr
from lds_dask.store.handmade import record_frame, write_store
from tests.cube_fixture import write_fake_cube

ENCODING_KEYS = ("chunks", "preferred_chunks", "shards", "fill_value", "_FillValue", "units")


def reference_open(path) -> xr.DataTree:
    """What open_cube returned when it used ``xr.open_datatree`` (before ``cube_read``)."""
    with quiet_zarr():
        tree = xr.open_datatree(path, engine="zarr", chunks=None, consolidated=True)
    root = tree.to_dataset(inherit=False).load()
    tree.dataset = root
    shared = {c: root[c] for c in AREA_COORDS if c in root.coords}
    for node in tree.children.values():
        if "area" in node.dims and shared:
            node.dataset = node.to_dataset(inherit=False).assign_coords(shared)
    return tree


def assert_same_tree(expected: xr.DataTree, actual: xr.DataTree) -> None:
    """Identical trees, and per node the same variables in order, dtypes and chunking."""
    xr.testing.assert_identical(expected, actual)
    for node in expected.subtree:
        want, got = node.to_dataset(inherit=False), actual[node.path].to_dataset(inherit=False)
        xr.testing.assert_identical(want, got)
        assert list(want.variables) == list(got.variables), node.path
        for name, var in want.variables.items():
            assert got[name].dtype == var.dtype, (node.path, name)
            for key in ENCODING_KEYS:
                assert str(got[name].encoding.get(key)) == str(var.encoding.get(key)), key


@pytest.fixture(scope="module")
def built_cube(tmp_path_factory):
    base = tmp_path_factory.mktemp("read")
    rows = [
        dict(
            test_id=f"t{i}",
            person_id=f"p{i % 20}",
            specimen_date=dt.date(2020, 10, 5 + i % 9),
            result="POSITIVE" if i % 3 == 0 else "NEGATIVE",
            la_code=["E06000001", "E08000035", "E09000001", "E07000223"][i % 4],
            lsoa11_code="E01000001" if i % 2 else None,
            sex="FMU"[i % 3],
        )
        for i in range(40)
    ]
    write_store(base / "store", record_frame(rows))
    return build_cube(base / "store", base / "cube.zarr", progress=False)


def test_open_cube_matches_the_xarray_zarr_backend(built_cube):
    expected, cube = reference_open(built_cube), open_cube(built_cube)
    assert_same_tree(expected, cube)
    for node in ("total", "lsoa"):
        ds, want = cube[node].to_dataset(), expected[node].to_dataset()
        for sel in ({"area": [7, 2, 2, -1]}, {"area": slice(300, None, 5), "week": 0}):
            sel = {d: s for d, s in sel.items() if d in ds.dims}
            xr.testing.assert_identical(ds.isel(sel).load(), want.isel(sel).load())
        chunks = {"area": 50} if "area" in ds.dims else {"lsoa": 5000}
        xr.testing.assert_identical(ds.chunk(chunks).compute(), ds.load())


def test_open_cube_matches_on_stores_xarray_wrote(tmp_path):
    """Default codecs, chunking and fixed-length strings: partly read by zarr-python."""
    write_fake_cube(tmp_path / "fake.zarr", weeks=3, with_status=True)
    assert_same_tree(reference_open(tmp_path / "fake.zarr"), open_cube(tmp_path / "fake.zarr"))
    tree = xr.DataTree.from_dict({"/": xr.Dataset({"code": ("area", np.array(["a", "bc"]))})})
    with quiet_zarr():
        tree.to_zarr(tmp_path / "fixed.zarr")  # numpy <U strings: fixed_length_utf32
    assert_same_tree(reference_open(tmp_path / "fixed.zarr"), open_cube(tmp_path / "fixed.zarr"))


def edge_tree() -> xr.DataTree:
    """Sharded and plain arrays with inner chunks, shards and chunks zarr leaves out."""
    counts = np.array([[1, 2, 3], [0, 0, 0], [4, 0, 6], [0, 0, 0], [7, 8, 9]])
    rates = np.where(counts > 0, counts / 2, np.nan)
    labels = np.array([["a", "", "ccc"], ["", "", ""], ["é", "x", ""], ["", "", ""], ["z"] * 3])
    node = xr.Dataset(
        {
            "counts": (("area", "week"), counts),
            "rates": (("area", "week"), rates, {"units": "per 100"}),
            "labels": (("area", "week"), labels.astype(object)),
            "zeros": (("area", "week"), np.zeros_like(counts)),
            "flag": ("week", np.zeros(3, dtype=bool)),
        },
        coords={"week": np.datetime64("2020-10-05", "ns") + np.arange(3) * np.timedelta64(7, "D")},
    )
    root = xr.Dataset(
        coords={"area": np.array(list("VWXYZ"), dtype=object), "area_name": ("area", list("vwxyz"))}
    )
    return xr.DataTree.from_dict({"/": root, "/node": node})


@pytest.fixture
def edge_store(tmp_path):
    path = tmp_path / "edge.zarr"
    sharded = {"chunks": (1, 3), "shards": (5, 3)}
    encoding = {"/node": {v: sharded for v in ("counts", "rates", "labels", "zeros")}}
    encoding["/node"]["counts"] = sharded | {"compressors": None}
    with quiet_zarr():
        edge_tree().to_zarr(path, encoding=encoding, consolidated=True)
    return path


def test_fill_values_where_zarr_left_chunks_out(edge_store):
    assert not (edge_store / "node" / "zeros" / "c").exists()  # no shard at all
    assert not (edge_store / "node" / "flag" / "c").exists()  # no chunk at all
    index = (edge_store / "node" / "counts" / "c" / "0" / "0").read_bytes()[-84:-4]
    assert np.frombuffer(index, "<u8").reshape(5, 2)[1].tolist() == [2**64 - 1] * 2
    cube = open_cube(edge_store)
    assert_same_tree(reference_open(edge_store), cube)
    xr.testing.assert_identical(cube.to_dataset().load(), edge_tree().to_dataset())
    xr.testing.assert_identical(
        cube["node"].to_dataset().load(), reference_open(edge_store)["node"].to_dataset().load()
    )


def one_line_error(path) -> str:
    with pytest.raises(CubeError) as info:
        open_cube(path).load()
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_incompatible_layouts_raise_one_line_cube_errors(tmp_path):
    ds = xr.Dataset({"tests": ("area", [1, 2])}, coords={"area": ["a", "b"]})
    with quiet_zarr():
        ds.to_zarr(tmp_path / "v2.zarr", zarr_format=2, consolidated=True)
        ds.to_zarr(tmp_path / "loose.zarr", consolidated=False)
        ds.to_zarr(tmp_path / "nodims.zarr", consolidated=False)
        zarr.create_array(str(tmp_path / "nodims.zarr"), name="raw", shape=(2,), dtype="int64")
        zarr.consolidate_metadata(str(tmp_path / "nodims.zarr"))
    assert "no zarr.json" in one_line_error(tmp_path / "v2.zarr")
    assert "no consolidated metadata" in one_line_error(tmp_path / "loose.zarr")
    assert "array raw has no dimension_names" in one_line_error(tmp_path / "nodims.zarr")
    assert "not a cube" in one_line_error(tmp_path / "missing.zarr")


def test_damaged_shards_raise_one_line_cube_errors(edge_store, tmp_path):
    shard = edge_store / "node" / "counts" / "c" / "0" / "0"
    damaged = bytearray(shard.read_bytes())
    damaged[-10] ^= 0xFF  # inside the shard index
    shutil.copytree(edge_store, tmp_path / "crc.zarr")
    (tmp_path / "crc.zarr" / shard.relative_to(edge_store)).write_bytes(bytes(damaged))
    assert "corrupt shard index" in one_line_error(tmp_path / "crc.zarr")
    shutil.copytree(edge_store, tmp_path / "short.zarr")
    (tmp_path / "short.zarr" / shard.relative_to(edge_store)).write_bytes(shard.read_bytes()[:50])
    assert "truncated" in one_line_error(tmp_path / "short.zarr")
