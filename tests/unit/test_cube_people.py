"""Person-week ownership pieces: shared-hash reduction and exact owner resolution."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from lds_dask.cube.build import CubeConfig, CubeError
from lds_dask.cube.neighbours import nearest_neighbours, neighbours_array
from lds_dask.cube.people import find_shared_hashes, resolve_owners

W = dt.date(2020, 10, 5)


def test_find_shared_hashes_across_and_within_bundles():
    u = np.uint64
    parts = [(np.array([1, 2, 3], u), np.array([9], u)), (np.array([3, 4], u), np.array([], u))]
    assert find_shared_hashes(parts).tolist() == [3, 9]


def test_resolve_owners_by_date_then_test_id():
    cands = pl.DataFrame(
        {
            "person_id": ["a", "a", "b", "b", "c"],
            "iso_week": [W] * 5,
            "la_code": ["E06000001", "E06000002", "E06000001", "E06000002", "E06000003"],
            "specimen_date": [W + dt.timedelta(1), W, W, W, W],
            "test_id": ["x", "y", "z2", "z1", "q"],
            "any_positive": [True, False, False, False, True],
        }
    )
    got = resolve_owners(cands).sort("person_id")
    assert got["person_id"].to_list() == ["a", "b"]  # c is in one LA only (hash collision)
    assert got["owner_la_code"].to_list() == ["E06000002", "E06000002"]
    assert got["any_positive"].to_list() == [True, False]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(people_scope="LFD"),
        dict(period_names=("a",)),
        dict(period_starts=("2020-13-01",)),
        dict(n_neighbours=0),
    ],
)
def test_config_errors(kwargs):
    with pytest.raises(CubeError):
        CubeConfig(**kwargs)


def test_neighbours_deterministic_and_sensible():
    codes, table = nearest_neighbours(15)
    assert len(codes) == 309 and table.shape == (309, 15)
    again = neighbours_array(["E06000001", "E92000001"])
    assert again[0].tolist() == table[0].tolist() and set(again[1]) == {""}
    # Hartlepool's neighbours include its North East unitary peers
    assert {"E06000002", "E06000003"} & set(table[codes.index("E06000001")])
    assert all(codes[i] not in table[i] for i in range(309))


def test_reduce_bucket_flags_only_bundles_holding_shared_hashes():
    from lds_dask.cube.people import reduce_bucket

    u = np.uint64
    parts = [
        (np.array([1, 2], u), np.array([], u)),
        (np.array([2, 5], u), np.array([], u)),
        (np.array([7], u), np.array([], u)),  # nothing shared: pass 3 skips it
        (np.array([8], u), np.array([9], u)),  # shared between its own LAs
    ]
    shared, holds = reduce_bucket(parts)
    assert shared.tolist() == [2, 9] and holds.tolist() == [True, True, False, True]
