"""The planted truth is recoverable from generated records with plain polars + numpy.

People-based PCR positivity by IMD decile recovers the planted log-odds gradient (the
infected test more often by a factor that does not depend on IMD), and the weighted
survey recovers the true prevalence of the ages it samples.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import sparse
from scipy.sparse import linalg as splinalg

from lds_dask.contract import refdata
from synthetic_gen import generate

sys.path.insert(0, str(Path(__file__).parent))
from synth_checks import read_all  # noqa: E402

Z95 = 1.959964


@pytest.fixture(scope="module")
def extract(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_recovery")
    generate(out, scale=0.003, seed=11, weeks=52, progress=False)
    return out


def people_by_stratum_and_decile(out: Path) -> pl.DataFrame:
    """Owned PCR person-weeks and positives per LA x week x IMD decile of the owning test."""
    rec = read_all(out, "test_records").filter(
        pl.col("test_type") == "PCR", pl.col("result") != "VOID"
    )
    owned = (
        rec.with_columns(iso_week=pl.col("specimen_date").dt.truncate("1w"))
        .sort("specimen_date", "test_id")
        .group_by("person_id", "iso_week")
        .agg(pl.col("la_code", "lsoa11_code").first(), pos=(pl.col("result") == "POSITIVE").any())
    )
    imd = refdata.lsoas().select("lsoa11_code", "imd_decile")
    return (
        owned.join(imd, on="lsoa11_code")
        .group_by("la_code", "iso_week", "imd_decile")
        .agg(n=pl.len(), y=pl.col("pos").sum())
    )


def logistic_slope(cells: pl.DataFrame) -> tuple[float, float]:
    """Log-odds slope per IMD decile from binomial logistic regression with LA and
    region x week fixed effects (sparse IRLS), so LA multipliers and regional timing
    drop out. Returns (estimate, standard error)."""
    las = refdata.las().select("la_code", "region_code")
    s = cells.join(las, on="la_code").with_columns(
        la=pl.col("la_code").rank("dense") - 1,
        rw=pl.struct("region_code", "iso_week").rank("dense") - 1,
    )
    n_la, rows = s["la"].max() + 1, s.height
    cols = [np.full(rows, 0), 1 + s["la"].to_numpy(), 1 + n_la + s["rw"].to_numpy()]
    x = sparse.csr_matrix(
        (
            np.concatenate([s["imd_decile"].to_numpy().astype(float), np.ones(2 * rows)]),
            (np.tile(np.arange(rows), 3), np.concatenate(cols)),
        )
    )
    x = x[:, [0] + list(range(2, x.shape[1]))]  # drop one LA: identifiability
    n, y = s["n"].to_numpy().astype(float), s["y"].to_numpy().astype(float)
    beta = np.zeros(x.shape[1])
    for _ in range(25):
        p = 1 / (1 + np.exp(-(x @ beta)))
        w = n * p * (1 - p)
        info = (x.T @ sparse.diags(w) @ x).tocsc() + sparse.identity(x.shape[1]) * 1e-9
        step = splinalg.spsolve(info, x.T @ (y - n * p))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    e0 = np.zeros(x.shape[1])
    e0[0] = 1
    return beta[0], float(np.sqrt(splinalg.spsolve(info, e0)[0]))


def test_planted_imd_gradient_is_recovered(extract):
    planted = json.loads((extract / "truth" / "params.json").read_text())
    want = planted["model"]["imd_log_odds_per_decile"]
    est, se = logistic_slope(people_by_stratum_and_decile(extract))
    assert abs(est - want) <= Z95 * se, (est, se, want)
    assert se < abs(want) / 4  # precise enough that a wrong gradient would fail


def test_weighted_survey_recovers_true_prevalence(extract):
    survey = read_all(extract, "survey_responses")
    y = (survey["swab_result"] == "POSITIVE").cast(pl.Float64).to_numpy()
    w = survey["survey_weight"].to_numpy()
    est = (w * y).sum() / w.sum()
    se = np.sqrt((w**2 * (y - est) ** 2).sum()) / w.sum()
    truth = pl.read_parquet(extract / "truth" / "survey_prevalence.parquet")
    england = truth.filter(pl.col("area_code") == refdata.ENGLAND_CODE)
    target = england["prevalence"].mean()  # every week has the same sample size
    assert england.height == 52
    assert abs(est - target) <= Z95 * se, (est, se, target)
    assert se < target / 4
