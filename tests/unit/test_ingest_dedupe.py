"""Duplicate test_ids across files and runs: bucketed on the workers, first copy kept.

Order of precedence: rows already in the store, then input files sorted by path, then row
order. Every case runs in-process and on the session's LocalCluster (``local_client``).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from test_ingest_fixtures import make_records, write

from lds_dask.ingest.dedupe import (
    NO_KEYS,
    collect_staged,
    count_buckets,
    find_bucket_duplicates,
    find_duplicates,
    hash_ids,
    split_by_bucket,
)
from lds_dask.ingest.run import assign_bundles, ingest
from lds_dask.runtime.tasks import TaskRunner

HOME, AWAY = "E06000001", "E08000025"  # in different LA bundles (checked below)


@pytest.fixture(params=["in-process", "dask"])
def client(request):
    """None (plain calls) or the session's 2-worker LocalCluster client."""
    return request.getfixturevalue("local_client") if request.param == "dask" else None


def key(file_index: int, source_row: int) -> int:
    return (file_index << 32) | source_row


def u64(values) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


def test_split_by_bucket_keeps_row_order_and_keys():
    hashes = u64([10, 3, 7, 8, 5, 12, 1])
    parts = split_by_bucket(hashes, 4, u64([key(3, r) for r in range(1, 8)]))
    assert [h.tolist() for h, _ in parts] == [[8, 12], [5, 1], [10], [3, 7]]
    assert [k.tolist() for _, k in parts] == [
        [key(3, 4), key(3, 6)],
        [key(3, 5), key(3, 7)],
        [key(3, 1)],
        [key(3, 2), key(3, 3)],
    ]
    stored = split_by_bucket(hashes, 4)
    assert all(len(k) == 0 for _, k in stored)


def test_a_bucket_keeps_stored_then_earlier_files_then_earlier_rows():
    parts = [
        (u64([40, 44]), NO_KEYS),  # stored rows: never dropped
        (u64([44, 48, 52]), u64([key(0, 0), key(0, 1), key(0, 2)])),
        (u64([48, 56, 52, 56]), u64([key(1, 0), key(1, 1), key(1, 2), key(1, 3)])),
    ]
    assert find_bucket_duplicates(parts).tolist() == [key(0, 0), key(1, 0), key(1, 2), key(1, 3)]


def test_find_duplicates_matches_a_global_first_distinct(tmp_path, client):
    runner, n_buckets = TaskRunner(client), 4
    rng = np.random.default_rng(7)
    ids = [f"id{i}" for i in rng.integers(0, 3000, 4000)]  # many repeats
    stored_ids, file_ids = ids[:1000], [ids[1000 + 500 * f : 1500 + 500 * f] for f in range(6)]
    file_ids[0][0] = "only-in-replaced"  # its stored copy leaves the store: not a duplicate
    stored = []
    for p in range(3):  # the store: three partitions, one row of a replaced file each
        part = stored_ids[p::3]
        path = write(
            pl.DataFrame(
                {
                    "test_id": [*part, "only-in-replaced"],
                    "source_file": ["old"] * len(part) + ["replaced"],
                }
            ),
            tmp_path / f"p{p}.parquet",
        )
        stored.append(path)
    staged = [
        {
            "summaries": [f],
            "buckets": split_by_bucket(
                hash_ids(pl.Series(ids_)), n_buckets, u64([key(f, r) for r in range(500)])
            ),
        }
        for f, ids_ in enumerate(file_ids)
    ]
    staged.insert(3, {"summaries": ["survey"], "buckets": None})  # a run without test_ids
    handles = runner.scatter(staged) if client is not None else staged
    has_ids = [s["buckets"] is not None for s in staged]
    summaries, parts = collect_staged(runner, handles, has_ids, n_groups=3)
    keys, counts = find_duplicates(runner, stored, ("replaced",), parts, n_buckets)
    assert summaries == [s["summaries"][0] for s in staged]
    everything = pl.Series([*stored_ids, *(i for f in file_ids for i in f)])
    later = np.flatnonzero(~everything.is_first_distinct().to_numpy()[len(stored_ids) :])
    assert keys.tolist() == sorted(key(int(p) // 500, int(p) % 500) for p in later)
    assert counts == dict(zip(*np.unique(later // 500, return_counts=True), strict=True))


def test_duplicates_across_bundles_buckets_and_runs_keep_the_first_copy(tmp_path, client):
    bundle = assign_bundles(4)  # 4 bundles: what tiny inputs get with 1 or 2 worker threads
    assert bundle[HOME] != bundle[AWAY]
    n_buckets = count_buckets(TaskRunner(client).n_threads())
    earlier = make_records(100, 1, las=(HOME,), prefix="old")
    ingest(
        [write(earlier, tmp_path / "r1" / "old.parquet")],
        tmp_path / "s",
        client=client,
        progress=False,
    )

    a = make_records(300, 2, las=(HOME,), prefix="a")
    first_of_bucket = {}
    for i, h in enumerate(hash_ids(a["test_id"])):
        first_of_bucket.setdefault(int(h) % n_buckets, i)
    assert len(first_of_bucket) == n_buckets  # the copies span every bucket
    copies = a.select(pl.all().gather(sorted(first_of_bucket.values()))).with_columns(
        la_code=pl.lit(AWAY), lsoa11_code=pl.lit(None, pl.String)
    )
    b = pl.concat([make_records(50, 3, las=(AWAY,), prefix="b"), copies])
    c = pl.concat([b.slice(0, 2), earlier.slice(5, 1), b.slice(0, 1)])  # last: within c too
    write(b, tmp_path / "in" / "b.parquet")
    write(c, tmp_path / "in" / "c.parquet")
    write(pl.concat([a, earlier.slice(7, 1)]), tmp_path / "in" / "a.parquet")
    report = ingest(
        [tmp_path / "in"], tmp_path / "s", client=client, progress=False, max_reject_rate=1.0
    )

    assert [f["reasons"] for f in report.files] == [
        {"test_id:unique": 1},  # a: a copy of a stored row
        {"test_id:unique": n_buckets},  # b: copies of a's rows, in another bundle
        {"test_id:unique": 4},  # c: copies of b's rows and of a stored row
    ]
    assert [(f["rows_in"], f["rows_stored"]) for f in report.files] == [
        (301, 300),
        (50 + n_buckets, 50),
        (4, 0),
    ]
    stored = pl.read_parquet(tmp_path / "s" / "records", hive_partitioning=True)
    assert stored.height == 450 and stored["test_id"].is_unique().all()
    kept = stored.filter(pl.col("test_id").is_in(copies["test_id"].to_list()))
    assert kept["la_code"].to_list() == [HOME] * n_buckets  # a's copies, not b's
    quarantine = tmp_path / "s" / "quarantine" / report.run_id
    qb = pl.read_parquet(quarantine / "b.parquet")
    assert qb["reason"].to_list() == ["test_id:unique"] * n_buckets
    assert qb["source_row"].to_list() == list(range(51, 51 + n_buckets))
    qc = pl.read_parquet(quarantine / "c.parquet")
    assert qc["source_row"].to_list() == [1, 2, 3, 4]
    assert set(qc["reason"]) == {"test_id:unique"}


def test_a_changed_files_old_rows_are_not_earlier_copies(tmp_path, client):
    x = tmp_path / "in" / "x.parquet"
    write(make_records(100, 1, prefix="t"), x)
    ingest([tmp_path / "in"], tmp_path / "s", client=client, progress=False)
    old = pl.read_parquet(x)
    write(old.slice(10), x)  # x changes: t1-0 .. t1-9 leave the store
    write(pl.concat([old.slice(0, 5), old.slice(50, 1)]), tmp_path / "in" / "y.parquet")
    report = ingest([tmp_path / "in"], tmp_path / "s", client=client, progress=False)
    assert [(f["status"], f["reasons"]) for f in report.files] == [
        ("changed", {}),
        ("new", {"test_id:unique": 1}),  # t1-50: x (new copy) comes first
    ]
    stored = pl.read_parquet(tmp_path / "s" / "records", hive_partitioning=True)
    assert stored.height == 95 and stored["test_id"].is_unique().all()
