"""open_cube + one LA selection reads only that LA's chunks and computes nothing else."""

from __future__ import annotations

import datetime as dt

import dask
import pytest
import zarr.storage

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


class CountTasks(dask.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.keys = []

    def _pretask(self, key, dsk, state):
        self.keys.append(key)


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
    assert cube["total"].ds["tests"].chunks is not None  # dask-backed
    data_keys = {f"{node}/{var}/" for node in cube.children for var in cube[node].ds.data_vars}
    assert len(data_keys) > 100
    read = [k for k, _ in shard_reads if any(k.startswith(d) for d in data_keys)]
    assert read == []


def test_one_la_selection_reads_only_its_chunks(cube_path, shard_reads):
    cube = open_cube(cube_path)
    shard_reads.clear()
    one = cube["total"].ds.sel(area=HART)
    n_vars = len(one.data_vars)
    with CountTasks() as counter:
        values = one.compute()
    assert int(values["tests"].sum()) == 10
    # one dask task per variable (read fused with the area selection), nothing else
    loads = [k for k in counter.keys if "open_dataset" in str(k) or "original" in str(k)]
    assert 0 < len(loads) <= n_vars + 5  # + the lazily loaded area coordinates
    data = [
        (k, r)
        for k, r in shard_reads
        if k.startswith("total/") and "/c/" in k and k.split("/")[1] in one.data_vars
    ]
    # every data read is a byte range (the shard index or one area's inner chunk), never
    # the whole shard: reading one LA touches only that LA's bytes
    assert data and all(r is not None for _, r in data)
    assert len(data) <= 2 * n_vars
