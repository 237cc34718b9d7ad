"""open_cube + one LA selection reads only that LA's byte ranges and computes nothing else.

Every read of a cube's arrays goes through ``cube_read.read_ranges`` (zarr-python is not
in the read path: its store is patched to fail), so recording that one function shows
exactly which byte ranges of which files a selection reads.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dask
import numpy as np
import pytest
import zarr.storage

from lds_dask.cube import read as cube_read
from lds_dask.cube.build import build_cube, open_cube
from lds_dask.store.handmade import record_frame, write_store

HART = "E06000001"
CITY = "E09000001"
SHARD = "c/0/0"  # the single shard of an (area, week) variable


@pytest.fixture(scope="module")
def cube_path(tmp_path_factory):
    base = tmp_path_factory.mktemp("lazy")
    rows = [
        dict(
            test_id=f"t{i}",
            person_id=f"p{i}",
            specimen_date=dt.date(2020, 10, 5 + i % 5),
            result="POSITIVE" if i % 4 == 0 else "NEGATIVE",
            la_code=["E06000001", "E08000035", "E09000001"][i % 3],
        )
        for i in range(30)
    ]
    write_store(base / "store", record_frame(rows))
    return build_cube(base / "store", base / "cube.zarr", progress=False)


def no_dask_computes(*args, **kwargs):
    raise AssertionError("open_cube + selection ran a dask compute")


@pytest.fixture
def reads(monkeypatch, cube_path):
    """Every (file relative to the cube, [(offset, nbytes), ...]) read while the test runs."""
    seen = []
    original = cube_read.read_ranges

    def recording(file, ranges):
        seen.append((Path(file).relative_to(cube_path).as_posix(), list(ranges)))
        return original(file, ranges)

    async def no_zarr(self, key, *args, **kwargs):
        raise AssertionError(f"zarr-python read {key}")

    monkeypatch.setattr(cube_read, "read_ranges", recording)
    monkeypatch.setattr(zarr.storage.LocalStore, "get", no_zarr)
    return seen


def shard_index(file: Path, n_area: int) -> np.ndarray:
    """(offset, nbytes) per area, parsed from the shard's tail independently of the reader."""
    raw = file.read_bytes()
    return np.frombuffer(raw[-4 - 16 * n_area : -4], dtype="<u8").reshape(n_area, 2)


def test_open_reads_no_data(cube_path, reads):
    cube = open_cube(cube_path)
    assert cube["total"].ds["tests"].chunks is None  # lazily indexed, no dask graph
    data_vars = {f"{node}/{var}" for node in cube.children for var in cube[node].ds.data_vars}
    assert len(data_vars) > 100
    read = {file.rsplit("/c", 1)[0] for file, _ in reads}
    assert not read & data_vars
    # index coordinates and the root's area coordinates, never each node's own copy
    assert {"area", "area_name", "utla_code", "total/week", "sex/sex"} <= read
    assert not any(f.endswith(("/area_name", "/region_code")) for f in read)


@pytest.mark.parametrize("la_code", [HART, CITY])
def test_one_la_selection_reads_only_its_byte_ranges(cube_path, reads, la_code):
    cube = open_cube(cube_path)
    reads.clear()
    one = cube["total"].ds.sel(area=la_code)
    assert reads == []  # selecting is lazy too
    with dask.config.set(scheduler=no_dask_computes):
        values = one.load()
    assert int(values["tests"].sum()) == 10
    row = list(cube["total"].ds["area"].values).index(la_code)
    by_var: dict[str, list] = {}
    for file, ranges in reads:
        by_var.setdefault(file.removeprefix("total/").removesuffix(f"/{SHARD}"), []).append(ranges)
    assert set(by_var) == set(one.data_vars)  # each variable read, nothing else
    for name, calls in by_var.items():
        var = cube["total"].ds[name]
        index = shard_index(cube_path / "total" / name / SHARD, var.sizes["area"])
        tail = 16 * var.sizes["area"] + 4
        # the shard index (from the end), then this LA's inner chunk: its exact byte range
        assert calls == [[(-tail, tail)], [tuple(int(x) for x in index[row])]], name
        if var.dtype.kind in "iuf":
            nbytes = var.dtype.itemsize * var.sizes["week"]
            assert calls[1] == [(row * nbytes, nbytes)], name


def test_the_shard_index_is_read_once_per_variable(cube_path, reads):
    cube = open_cube(cube_path)
    tests = cube["total"].ds["tests"]
    tests.sel(area=HART).load()
    reads.clear()
    tests.sel(area=CITY).load()
    (file, ranges), *others = reads
    assert file == f"total/tests/{SHARD}" and others == []
    assert len(ranges) == 1 and ranges[0][0] >= 0  # the LA's row only


def test_loading_a_whole_variable_reads_every_row(cube_path, reads):
    cube = open_cube(cube_path)
    tests = cube["total"].ds["tests"]
    reads.clear()
    tests.load()
    n_area, nbytes = tests.sizes["area"], 8 * tests.sizes["week"]
    index, rows = (ranges for _, ranges in reads)  # one call (one read: the rows touch)
    assert rows == [(i * nbytes, nbytes) for i in range(n_area)]
