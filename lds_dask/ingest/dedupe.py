"""Duplicate test_ids across input files and runs, found on the workers by hash bucket.

The validator catches a test_id repeated within one file. Across files and runs the first
copy is kept, in this order: rows already in the store, then input files sorted by path
(file index order), then row order within a file. Later copies are quarantined by stage 2
as ``test_id:unique``.

1. each stage-1 task hashes its valid rows' test_ids and keeps (hash, key) pairs split
   into ``n_buckets`` buckets by ``hash % n_buckets`` (:func:`split_by_bucket`; key =
   file_index * 2**32 + source_row). A few tasks combine them into runs of consecutive files
   (:func:`combine_staged`), so the task count does not grow with files x buckets. The
   stored test_ids (minus rows of replaced source files) are hashed by a few tasks the same
   way, without keys (:func:`hash_stored`);
2. one reduction per bucket receives bucket b of every part, worker to worker, in the order
   above and runs ``is_first_distinct`` (:func:`find_bucket_duplicates`). A test_id always
   lands in the same bucket, so the buckets are independent.

The client only gathers the keys of the later copies (and the per-file summaries), so its
memory does not grow with the data. The hash is polars' seeded ``Series.hash``, only stable
within one polars version, so it is never stored: earlier runs' test_ids are re-hashed from
the partitions (which keep the full test_id). A 64-bit collision (odds about 3e-4 at 1e8
rows) would quarantine one valid row; reconciliation still holds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl

from lds_dask.runtime.tasks import TaskRunner

HASH_SEED = 20210104
UNIQUE_REASON = "test_id:unique"
NO_KEYS = np.empty(0, np.uint64)

# (hashes, keys) of one bucket of one part, in row order; stored parts have no keys
BucketPart = tuple[np.ndarray, np.ndarray]


def count_buckets(threads: int) -> int:
    """Enough buckets for every worker thread to reduce a few, each small enough that its
    hash table stays cache-friendly (16 buckets of 7M hashes: ~2x faster than 4 of 28M)."""
    return min(64, max(16, 4 * threads))


def hash_ids(ids: pl.Series) -> np.ndarray:
    """The seeded 64-bit hash of each id (uint64)."""
    return ids.hash(seed=HASH_SEED).to_numpy()


def row_keys(staged: pl.DataFrame) -> np.ndarray:
    """Each staged row's key: ``file_index * 2**32 + source_row`` (uint64)."""
    key = pl.col("file_index").cast(pl.UInt64) * (1 << 32) + pl.col("source_row")
    return staged.select(key)[:, 0].to_numpy()


def split_by_bucket(
    hashes: np.ndarray, n_buckets: int, keys: np.ndarray | None = None
) -> list[BucketPart]:
    """(hashes, keys) of each bucket ``hash % n_buckets``, in row order. Stored rows have no
    keys (they are never dropped)."""
    bucket = (hashes % np.uint64(n_buckets)).astype(np.min_scalar_type(n_buckets - 1))
    order = np.argsort(bucket, kind="stable")  # radix sort on a small integer type
    bounds = np.cumsum(np.bincount(bucket, minlength=n_buckets))[:-1]
    if keys is None:
        return [(h, NO_KEYS) for h in np.split(hashes[order], bounds)]
    return list(zip(np.split(hashes[order], bounds), np.split(keys[order], bounds), strict=True))


def combine_staged(staged: list[dict]) -> dict:
    """Summaries of a run of consecutive stage results, and their bucket parts concatenated
    in file order: one part per bucket for the run, so the reductions need few tasks."""
    parts = [s["buckets"] for s in staged if s["buckets"] is not None]
    n_buckets = len(parts[0]) if parts else 0
    return {
        "summaries": [summary for s in staged for summary in s["summaries"]],
        "buckets": [
            (
                np.concatenate([p[b][0] for p in parts]),
                np.concatenate([p[b][1] for p in parts]),
            )
            for b in range(n_buckets)
        ]
        or None,
    }


def hash_stored(paths: list[Path], replaced: tuple[str, ...], n_buckets: int) -> list[BucketPart]:
    """Buckets of the hashes of the test_ids already stored (minus replaced source files).

    Hashed one partition at a time, so a task holds 8 bytes per row, not the strings."""
    hashes = [hash_ids(read_stored_ids(p, replaced)) for p in paths]
    return split_by_bucket(np.concatenate([np.empty(0, np.uint64), *hashes]), n_buckets)


def read_stored_ids(path: Path, replaced: tuple[str, ...]) -> pl.Series:
    """The test_ids of one stored partition, minus the rows of replaced source files."""
    if not replaced:
        return pl.read_parquet(path, columns=["test_id"])["test_id"]
    frame = pl.read_parquet(path, columns=["test_id", "source_file"])
    return frame.filter(~pl.col("source_file").is_in(list(replaced)))["test_id"]


def find_bucket_duplicates(parts: list[BucketPart]) -> np.ndarray:
    """One bucket: the keys of the rows whose hash came earlier in ``parts`` (stored rows,
    which have no keys, are never dropped)."""
    hashes = np.concatenate([h for h, _ in parts])
    ordered = np.sort(hashes)  # ~3x faster than a hash table at millions of rows
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(repeated):
        return NO_KEYS
    suspect = np.flatnonzero(np.isin(hashes, repeated))
    later = np.zeros(len(hashes), bool)
    later[suspect] = ~pl.Series(hashes[suspect], dtype=pl.UInt64).is_first_distinct().to_numpy()
    keys, offset = [NO_KEYS], 0
    for h, k in parts:
        if len(k):
            keys.append(k[later[offset : offset + len(h)]])
        offset += len(h)
    return np.concatenate(keys)


def collect_staged(
    runner: TaskRunner, staged: list, has_ids: list[bool], n_groups: int
) -> tuple[list[dict], list]:
    """Combine stage-1 results into at most ``n_groups`` runs of consecutive files.

    Returns every file's summary (gathered) and handles of the bucket lists of the runs
    holding a file with ids. Combining bounds the tasks the reductions need to
    ``n_groups * n_buckets`` whatever the number of files.
    """
    size = math.ceil(len(staged) / n_groups)
    runs = [range(i, min(i + size, len(staged))) for i in range(0, len(staged), size)]
    combined = runner.map(
        combine_staged, [[staged[i] for i in run] for run in runs], label="collect hashes"
    )
    summaries = runner.gather(runner.pick(combined, "summaries"))
    with_ids = [c for c, run in zip(combined, runs, strict=True) if any(has_ids[i] for i in run)]
    return [s for part in summaries for s in part], runner.pick(with_ids, "buckets")


def find_duplicates(
    runner: TaskRunner,
    stored: list[Path],
    replaced: tuple[str, ...],
    file_parts: list,
    n_buckets: int,
) -> tuple[np.ndarray | None, dict[int, int]]:
    """Keys of the later copies of every test_id, and their count per file index.

    ``stored`` are the record partitions already in the store; ``file_parts`` are handles
    of bucket lists of this run's record files, in file index order.
    """
    if not file_parts:
        return None, {}
    n_groups = min(len(stored), max(8, n_buckets))
    groups = [stored[i::n_groups] for i in range(n_groups)]
    old = runner.map(hash_stored, groups, replaced, n_buckets, label="hash stored test_ids")
    buckets = runner.split([*old, *file_parts], n_buckets)
    keys = np.concatenate(
        runner.gather(runner.map(find_bucket_duplicates, buckets, label="find duplicates"))
    )
    if not len(keys):
        return None, {}
    indexes, counts = np.unique(keys >> np.uint64(32), return_counts=True)
    return np.sort(keys), dict(zip(indexes.tolist(), counts.tolist(), strict=True))
