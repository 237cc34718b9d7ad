"""Person-week ownership: each person-week belongs to exactly one LA.

A person-week (person_id, ISO week) belongs to the LA of the person's first valid
in-scope test that week: the earliest ``specimen_date``, ties broken by the smallest
``test_id``. Valid means not VOID; in scope means PCR (default, as the UKHSA dashboard)
or any test type. The person-week is positive when any in-scope test that week, in any
LA, is POSITIVE. Because every person-week has one owner, LA people counts add up
exactly to UTLA, region and England.

Almost every person-week is seen in one LA only, so ownership is settled without moving
records between tasks:

1. each bundle task hashes its distinct (la_code, person-week) keys with a fixed seed and
   returns them split into buckets by hash;
2. one reduction per bucket finds hashes seen in more than one LA (a small set);
3. each bundle task returns, for person-weeks whose hash is in that set, their first
   (specimen_date, test_id) and any-positive flag in each of its LAs;
4. the client resolves owners by the real keys, so a hash collision only costs a little
   extra exact work, never a wrong answer.

The resulting decisions table goes to the counting pass (see ``cube_counts``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from lds_dask.runtime.tasks import TaskRunner
from lds_dask.store.read import Store

HASH_SEED = 20_200_101
PEOPLE_SCOPES = ("PCR", "ALL")
KEY = ("person_id", "iso_week")
DECISION_SCHEMA = {
    "person_id": pl.String,
    "iso_week": pl.Date,
    "owner_la_code": pl.String,
    "any_positive": pl.Boolean,
}


def in_scope(scope: str) -> pl.Expr:
    """True for tests that can make a person tested: valid (not VOID) and in scope."""
    valid = pl.col("result") != "VOID"
    return valid if scope == "ALL" else valid & (pl.col("test_type") == scope)


def person_week_hash() -> pl.Expr:
    """A fixed-seed 64-bit hash of (person_id, iso_week); equal keys hash equally everywhere."""
    return pl.struct(*KEY).hash(seed=HASH_SEED).alias("pw_hash")


def hash_person_weeks(
    bundle: tuple[str, ...], store: Store, scope: str, n_buckets: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pass 1 for one bundle: per bucket, (hashes seen in exactly one of its LAs, hashes
    seen in several of its LAs), each sorted and unique."""
    df = store.read_records(
        bundle, ("person_id", "specimen_date", "result", "test_type"), derived=False
    )
    keys = (
        df.lazy()
        .filter(in_scope(scope))
        .select("la_code", person_week_hash())
        .unique()
        .group_by("pw_hash")
        .agg(n_las=pl.len())
        .collect()
    )
    hashes = keys["pw_hash"].to_numpy()
    multi = keys["n_las"].to_numpy() > 1
    bucket = hashes % np.uint64(n_buckets)
    return [
        (np.sort(hashes[(bucket == b) & ~multi]), np.sort(hashes[(bucket == b) & multi]))
        for b in range(n_buckets)
    ]


def find_shared_hashes(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Pass 2 for one bucket: hashes seen in more than one LA across all bundles."""
    single = np.concatenate([p[0] for p in parts]) if parts else np.array([], np.uint64)
    values, counts = np.unique(single, return_counts=True)
    within = [p[1] for p in parts]
    return np.unique(np.concatenate([values[counts > 1], *within]).astype(np.uint64))


def reduce_bucket(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2 task: the bucket's shared hashes and which bundles hold any of them, so
    pass 3 skips bundles with no cross-LA person-week."""
    shared = find_shared_hashes(parts)
    holds = np.array([p[1].size > 0 or np.isin(p[0], shared).any() for p in parts], bool)
    return shared, holds


def first_tests_of(
    bundle: tuple[str, ...], store: Store, scope: str, shared: np.ndarray
) -> pl.DataFrame:
    """Pass 3 for one bundle: first in-scope test and any-positive, per LA, for the
    person-weeks whose hash is shared."""
    cols = ("test_id", "person_id", "specimen_date", "result", "test_type")
    df = store.read_records(bundle, cols, derived=False)
    return (
        df.lazy()
        .filter(in_scope(scope))
        .with_columns(person_week_hash())
        .join(
            pl.DataFrame({"pw_hash": shared}, schema={"pw_hash": pl.UInt64}).lazy(),
            on="pw_hash",
            how="semi",
        )
        .sort("specimen_date", "test_id")
        .group_by(*KEY, "la_code")
        .agg(
            pl.col("specimen_date").first(),
            pl.col("test_id").first(),
            any_positive=(pl.col("result") == "POSITIVE").any(),
        )
        .collect()
    )


def resolve_owners(candidates: pl.DataFrame) -> pl.DataFrame:
    """Owner LA and any-positive of each person-week seen in more than one LA."""
    if candidates.height == 0:
        return pl.DataFrame(schema=DECISION_SCHEMA)
    return (
        candidates.sort(*KEY, "specimen_date", "test_id")
        .group_by(*KEY, maintain_order=True)
        .agg(
            owner_la_code=pl.col("la_code").first(),
            n_las=pl.len(),
            any_positive=pl.col("any_positive").any(),
        )
        .filter(pl.col("n_las") > 1)
        .drop("n_las")
        .cast(DECISION_SCHEMA)
    )


def find_person_week_owners(
    runner: TaskRunner, store: Store, bundles: list[tuple[str, ...]], scope: str
) -> pl.DataFrame:
    """The ownership decisions for every person-week seen in more than one LA.

    Person ids stay in memory on the workers and the client (inside the TRE); they are
    never logged or written.
    """
    n_buckets = max(1, min(32, len(bundles)))
    parts = runner.map(hash_person_weeks, bundles, store, scope, n_buckets, label="people: hash")
    reduced = runner.gather(
        runner.map(reduce_bucket, runner.split(parts, n_buckets), label="people: reduce")
    )
    shared_all = np.concatenate([np.asarray(s, np.uint64) for s, _ in reduced])
    if shared_all.size == 0:
        return pl.DataFrame(schema=DECISION_SCHEMA)
    holders = np.logical_or.reduce([h for _, h in reduced])
    shared_handle = runner.share(shared_all)
    firsts = runner.map(
        first_tests_of,
        [b for b, held in zip(bundles, holders, strict=True) if held],
        store,
        scope,
        shared_handle,
        label="people: resolve",
    )
    return resolve_owners(pl.concat(runner.gather(firsts)))
