"""The hand-written shards of ``cube_zarr`` against zarr's own writer and reader.

``write_shard`` writes the bytes of a sharded zarr v3 array itself (zarr-python encodes
inner chunks one by one, too slowly for a cube). These tests pin it to zarr: the same
data written by zarr must give byte-identical shard files, and zarr must read ours back
exactly, whole and one area at a time.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
import zarr

from lds_dask.cube.write import node_encoding, quiet_zarr, write_node

RNG = np.random.default_rng(20_201_005)


def node(n_area: int) -> xr.Dataset:
    floats = RNG.normal(size=(n_area, 4, 3))
    floats[0, 1, 2] = np.nan
    return xr.Dataset(
        {
            "tests": (("area", "week"), RNG.integers(0, 2**40, size=(n_area, 4))),
            "rate": (("area", "week", "sex"), floats),
            "cells": (("area", "week", "age", "sex"), RNG.integers(-5, 5, size=(n_area, 4, 2, 3))),
            "label": (("area", "week"), np.full((n_area, 4), "similar", dtype=object)),
        },
        coords={
            "area": np.array([f"E0600000{i}" for i in range(n_area)], dtype=object),
            "week": np.arange(4),
            "sex": np.array(["F", "M", "U"], dtype=object),
        },
    )


def write_by_zarr(ds: xr.Dataset, path) -> None:
    with quiet_zarr():
        ds.to_zarr(path, group="n", mode="w", encoding=node_encoding(ds), consolidated=False)


@pytest.mark.parametrize("n_area", [1, 7])
def test_shards_are_byte_identical_to_zarrs(tmp_path, n_area):
    ds = node(n_area)
    write_by_zarr(ds, tmp_path / "ref.zarr")
    write_node(("n", ds), tmp_path / "ours.zarr")
    for var in ("tests", "rate", "cells"):
        meta = json.loads((tmp_path / "ours.zarr" / "n" / var / "zarr.json").read_text())
        assert meta["codecs"][0]["name"] == "sharding_indexed"  # the fast path ran
        ref = sorted(p for p in (tmp_path / "ref.zarr" / "n" / var).rglob("*") if p.is_file())
        ours = sorted(p for p in (tmp_path / "ours.zarr" / "n" / var).rglob("*") if p.is_file())
        assert [p.name for p in ours] == [p.name for p in ref]
        for a, b in zip(ours, ref, strict=True):
            if a.name != "zarr.json":
                assert a.read_bytes() == b.read_bytes(), var


def test_zarr_reads_hand_written_shards_exactly(tmp_path):
    ds = node(5)
    write_node(("n", ds), tmp_path / "ours.zarr")
    group = zarr.open_group(str(tmp_path / "ours.zarr" / "n"), mode="r")
    for var in ("tests", "rate", "cells"):
        np.testing.assert_array_equal(group[var][...], ds[var].values)
        for i in range(5):  # one area's inner chunk at a time
            np.testing.assert_array_equal(group[var][i], ds[var].values[i])
    with quiet_zarr():
        back = xr.open_zarr(tmp_path / "ours.zarr", group="n", consolidated=False).load()
    xr.testing.assert_identical(back.drop_encoding(), ds)


def test_unexpected_layout_falls_back_to_zarr(tmp_path, monkeypatch):
    import lds_dask.cube.write as cz

    monkeypatch.setattr(cz, "EXPECTED_INNER", [{"name": "not-this"}])
    ds = node(3)
    write_node(("n", ds), tmp_path / "ours.zarr")
    group = zarr.open_group(str(tmp_path / "ours.zarr" / "n"), mode="r")
    np.testing.assert_array_equal(group["rate"][...], ds["rate"].values)
