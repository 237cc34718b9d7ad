"""Generator -> ingest -> build_cube: the cube recovers the planted truth.

Counts equal the truth's exact LA x week counts (both people scopes), regions and
England equal LA sums, and the planted IMD gradient and survey prevalence fall inside
the cube's 95% intervals.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

import synthetic_gen
from lds_dask.cube import CubeConfig, build_cube, open_cube
from lds_dask.ingest import ingest

COUNTS = ["tests", "positive_tests", "people_tested", "people_positive"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    base = tmp_path_factory.mktemp("chain")
    synthetic_gen.generate(
        base / "gen", scale=0.002, seed=7, start=dt.date(2020, 10, 5), weeks=4, progress=False
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


def logit_slope(pos: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares slope (and SE) of empirical-logit positivity on decile 1..10."""
    y = np.log((pos + 0.5) / (n - pos + 0.5))
    w = 1 / (1 / (pos + 0.5) + 1 / (n - pos + 0.5))
    x = np.arange(10.0)
    xc = x - (w * x).sum() / w.sum()
    slope = (w * xc * (y - (w * y).sum() / w.sum())).sum() / (w * xc**2).sum()
    return slope, 1 / np.sqrt((w * xc**2).sum())


def test_imd_gradient_recovered(chain):
    """The planted IMD gradient, as realised in the truth's England prevalence by decile
    (the per-decile log-odds step plus the planted LA effects it carries), lies in the 95%
    CI of the cube's England positivity log-odds slope over deciles (weeks pooled)."""
    base, cube = chain
    truth = pl.read_parquet(base / "gen" / "truth" / "prevalence.parquet").filter(
        pl.col("area_code") == "E92000001", pl.col("imd_decile").is_not_null()
    )
    prev = truth.group_by("imd_decile").agg(pl.col("prevalence").mean()).sort("imd_decile")
    p = prev["prevalence"].to_numpy()
    true_slope = np.polyfit(np.arange(10.0), np.log(p / (1 - p)), 1)[0]
    ds = cube["imd_decile"].ds.sel(area="E92000001", imd_decile=[str(d) for d in range(1, 11)])
    slope, se = logit_slope(
        ds["people_positive"].sum("week").values.astype(float),
        ds["people_tested"].sum("week").values.astype(float),
    )
    assert slope - 1.96 * se <= true_slope <= slope + 1.96 * se, (slope, se, true_slope)
    assert se < 0.05 and slope + 1.96 * se < 0  # informative: more deprived, more positive


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
