"""open_cube + one LA selection reads only that LA's chunks and computes nothing else."""

from __future__ import annotations

import datetime as dt

import dask
import pytest
import zarr.storage
from zarr.abc.store import RangeByteRequest, SuffixByteRequest

from lds_dask.cube import build_cube, open_cube
from lds_dask.cube_testing import record_frame, write_store

HART = "E06000001"


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
def shard_reads(monkeypatch):
    """Every (key, byte_range) read from a LocalStore while the test runs."""
    reads = []
    original = zarr.storage.LocalStore.get

    async def counting_get(self, key, prototype=None, byte_range=None):
        reads.append((key, byte_range))
        return await original(self, key, prototype, byte_range)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting_get)
    return reads


def test_open_reads_no_data(cube_path, shard_reads):
    cube = open_cube(cube_path)
    assert cube["total"].ds["tests"].chunks is None  # lazily indexed, no dask graph
    data_keys = {f"{node}/{var}/" for node in cube.children for var in cube[node].ds.data_vars}
    assert len(data_keys) > 100
    read = [k for k, _ in shard_reads if any(k.startswith(d) for d in data_keys)]
    assert read == []


def test_one_la_selection_reads_only_its_chunks(cube_path, shard_reads):
    cube = open_cube(cube_path)
    shard_reads.clear()
    one = cube["total"].ds.sel(area=HART)
    assert shard_reads == []  # selecting is lazy too
    with dask.config.set(scheduler=no_dask_computes):
        values = one.load()
    assert int(values["tests"].sum()) == 10
    row = list(cube["total"].ds["area"].values).index(HART)
    data = [(k, r) for k, r in shard_reads if k.startswith("total/") and "/c/" in k]
    assert {k.split("/")[1] for k, _ in data} == set(one.data_vars)  # each variable read
    for key, byte_range in data:
        var = cube["total"].ds[key.split("/")[1]]
        nbytes = var.dtype.itemsize * var[0].size
        if isinstance(byte_range, SuffixByteRequest):  # the shard index, at the end
            continue
        # otherwise this LA's inner chunk only, never the whole shard: numbers at the
        # exact offset of the LA's row; strings (variable length) a small slice
        assert isinstance(byte_range, RangeByteRequest), key
        if var.dtype.kind in "iuf":
            assert (byte_range.start, byte_range.end) == (row * nbytes, (row + 1) * nbytes), key
        else:
            shard_size = (cube_path / key).stat().st_size
            assert byte_range.end - byte_range.start < shard_size / 100, key
