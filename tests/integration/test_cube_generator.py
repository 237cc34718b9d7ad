"""Generator -> ingest -> build_cube: the cube recovers the planted truth.

Counts equal the truth's exact LA x week counts (both people scopes), regions and
England equal LA sums, the survey prevalence falls inside the cube's 95% intervals, and
the planted IMD log-odds step (truth/params.json) lies in the 95% CI of a within-LA x
week slope fitted to the cube's imd_decile node.

Why within LA x week: the generator's logit is curve(region, week) + LA effect + age +
ethnicity + slope x decile, and an LA's age and ethnicity mix do not vary by decile, so
the England slope (about -0.10 here) also carries the LA effects. Conditioning on each
LA-week's positives removes the LA and week terms; collapsing over age and ethnicity
moves the limit by 0.1% (-0.0799 on expected counts). Strata hold ~10 people, so an
unconditional fit with one parameter per stratum is biased away from zero (incidental
parameters; -0.089 on average over 230 seeds) and the conditional likelihood is used.
Seed 8, not 7: seed 7's realisation gives -0.112 +- 0.014, 2.3 SE out (a correct 95% CI
misses about 1 seed in 20); over seeds 1-230 the mean is -0.0811 and the CI covers -0.08
in 95.7% of seeds, and never covers 0 or -0.16.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from scipy.special import gammaln

import synthetic_gen
from lds_dask.cube.build import CubeConfig, build_cube, open_cube
from lds_dask.ingest.run import ingest

Z95 = 1.959964
COUNTS = ["tests", "positive_tests", "people_tested", "people_positive"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    base = tmp_path_factory.mktemp("chain")
    synthetic_gen.generate(
        base / "gen", scale=0.002, seed=8, start=dt.date(2020, 10, 5), weeks=4, progress=False
    )
    ingest(
        [base / "gen" / "test_records"],
        base / "store",
        survey=base / "gen" / "survey_responses",
        ahah=base / "gen" / "ahah.parquet",
        progress=False,
    )
    cube = open_cube(build_cube(base / "store", base / "cube.zarr", progress=False))
    return base, cube


def cube_la_weeks(cube) -> pl.DataFrame:
    ds = cube["total"].ds[COUNTS].isel(area=slice(0, 309)).compute()
    frame = {c: ds[c].values.ravel() for c in COUNTS}
    area, week = np.meshgrid(ds["area"].values.tolist(), ds["week"].values, indexing="ij")
    frame |= {"la_code": np.array(area.ravel().tolist()), "iso_week": week.ravel()}
    return pl.DataFrame(frame).with_columns(pl.col("iso_week").cast(pl.Date))


def test_counts_equal_truth(chain):
    base, cube = chain
    truth = pl.read_parquet(base / "gen" / "truth" / "la_week_counts.parquet")
    got = cube_la_weeks(cube)
    joined = truth.join(got, on=["la_code", "iso_week"], how="full", coalesce=True, suffix="_cube")
    for c in COUNTS:
        assert (joined[c].fill_null(0) == joined[f"{c}_cube"].fill_null(0)).all(), c
    assert truth["people_positive"].sum() > 100


def test_all_scope_counts_equal_truth(chain, tmp_path):
    base, _ = chain
    cube = open_cube(
        build_cube(
            base / "store",
            tmp_path / "all.zarr",
            progress=False,
            config=CubeConfig(people_scope="ALL"),
        )
    )
    truth = pl.read_parquet(base / "gen" / "truth" / "la_week_counts.parquet")
    got = cube_la_weeks(cube)
    joined = truth.join(got, on=["la_code", "iso_week"], how="left")
    for c in ("people_tested", "people_positive"):
        assert (joined[f"{c}_all"] == joined[f"{c}_right"].fill_null(0)).all(), c


def test_aggregates_equal_la_sums(chain):
    _, cube = chain
    for node in ("total", "age_band", "imd_decile"):
        ds = cube[node].ds[COUNTS].compute()
        for c in COUNTS:
            la = ds[c].isel(area=slice(0, 309))
            np.testing.assert_array_equal(la.sum("area").values, ds[c].sel(area="E92000001").values)
            for region in ("E12000001", "E12000007"):
                mask = (ds["region_code"].isel(area=slice(0, 309)) == region).values
                np.testing.assert_array_equal(la.values[mask].sum(0), ds[c].sel(area=region).values)


def score_tables(n: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per stratum (row of ``n``, ``y``: tested and positive by decile 1..10) with both
    positives and negatives: the score T = sum over positives of (decile - 1), and
    log h(t) for t = 0..9Y, h(t) = ways to choose the Y positives among the stratum's
    tested with score t. Given Y, P(T = t) is proportional to h(t) exp(slope t).
    Returns (T, log h padded with -inf to a common width)."""
    scores, tables = [], []
    for ns, ys in zip(n.astype(int), y.astype(int), strict=True):
        total = int(ys.sum())
        if total in (0, ns.sum()):
            continue
        h = np.full((total + 1, 9 * total + 1), -np.inf)  # positives so far x score
        h[0, 0] = 0.0
        for d, nd in enumerate(ns):
            nxt = np.full_like(h, -np.inf)
            for j in range(min(nd, total) + 1):  # j positives in decile d + 1
                ways = gammaln(nd + 1) - gammaln(j + 1) - gammaln(nd - j + 1)
                moved = h[: total + 1 - j, : h.shape[1] - d * j] + ways
                nxt[j:, d * j :] = np.logaddexp(nxt[j:, d * j :], moved)
            h = nxt
        scores.append(ys @ np.arange(10))
        tables.append(h[total])
    width = max(len(t) for t in tables)
    padded = np.array([np.pad(t, (0, width - len(t)), constant_values=-np.inf) for t in tables])
    return np.array(scores, dtype=float), padded


def conditional_slope(n: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Log-odds slope per decile (and SE) by conditional logistic regression, one stratum
    per row: a free intercept per stratum, removed by conditioning on its positives."""
    scores, log_h = score_tables(n, y)
    t = np.arange(log_h.shape[1], dtype=float)
    slope = 0.0
    for _ in range(50):
        a = log_h + slope * t
        w = np.exp(a - a.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        mean = w @ t
        info = (w * (t - mean[:, None]) ** 2).sum()
        step = (scores - mean).sum() / info
        slope += step
        if abs(step) < 1e-10:
            break
    return slope, 1 / np.sqrt(info)


def test_planted_imd_gradient_recovered(chain):
    """The planted per-decile log-odds step lies in the 95% CI of the cube's LA x week
    conditional slope over deciles, and the CI excludes no gradient and twice the step."""
    base, cube = chain
    want = json.loads((base / "gen" / "truth" / "params.json").read_text())["model"][
        "imd_log_odds_per_decile"
    ]
    ds = cube["imd_decile"].ds.sel(imd_decile=[str(d) for d in range(1, 11)])
    ds = ds.isel(area=(ds["area_type"] == "ltla").values)[["people_tested", "people_positive"]]
    assert ds.sizes["area"] == 309
    n, y = (ds[c].compute().values.reshape(-1, 10) for c in ("people_tested", "people_positive"))
    est, se = conditional_slope(n, y)
    assert abs(est - want) <= Z95 * se, (est, se, want)
    assert abs(est) > Z95 * se and abs(est - 2 * want) > Z95 * se, (est, se, want)


def test_survey_prevalence_recovered(chain):
    base, cube = chain
    truth = (
        pl.read_parquet(base / "gen" / "truth" / "survey_prevalence.parquet")
        .filter(pl.col("area_code") == "E92000001", pl.col("imd_decile").is_null())
        .sort("iso_week")
    )
    ds = cube["total"].ds.sel(area="E92000001").compute()
    lower = ds["survey_prevalence_pct_lower"].values / 100
    upper = ds["survey_prevalence_pct_upper"].values / 100
    assert len(lower) == truth.height == 4
    assert (
        (lower <= truth["prevalence"].to_numpy()) & (truth["prevalence"].to_numpy() <= upper)
    ).all()
