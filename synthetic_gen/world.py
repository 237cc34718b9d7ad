"""The deterministic world every chunk shares: LAs, LSOAs, pyramids, curve and volumes.

Built once on the client from the packaged reference data and the seed (never the scale or
worker count, except for the volumes and the bundling), then shipped to every Dask task.
Arrays are indexed by the LA's position in ``refdata.las()`` (sorted by code).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from lds_dask.contract import refdata
from lds_dask.contract.bands import ETHNICITIES
from synthetic_gen.ids import rng_for
from synthetic_gen.params import ChunkingParams, ModelParams

SEXES_MODEL = ("F", "M")
N_AGES, N_DECILES = 91, 10
REGION_ETHNICITY = {  # approximate 2011 Census shares: ASIAN, BLACK, MIXED, WHITE, OTHER
    "E12000001": (0.030, 0.005, 0.009, 0.950, 0.006),
    "E12000002": (0.060, 0.014, 0.016, 0.900, 0.010),
    "E12000003": (0.070, 0.015, 0.016, 0.890, 0.009),
    "E12000004": (0.065, 0.018, 0.019, 0.890, 0.008),
    "E12000005": (0.110, 0.033, 0.024, 0.820, 0.013),
    "E12000006": (0.048, 0.020, 0.019, 0.907, 0.006),
    "E12000007": (0.180, 0.130, 0.050, 0.600, 0.040),
    "E12000008": (0.052, 0.011, 0.019, 0.912, 0.006),
    "E12000009": (0.020, 0.007, 0.014, 0.956, 0.003),
}
UNKNOWN_ETHNICITY_SHARE = 0.04


@dataclass(frozen=True)
class World:
    """Everything a chunk needs, as plain numpy arrays (cheap to pickle)."""

    seed: int
    scale: float
    mondays: tuple[dt.date, ...]
    la_codes: np.ndarray  # (L,) str
    lsoa_codes: np.ndarray  # (S,) str, sorted by LA then IMD decile
    pyramid: np.ndarray  # (L, 2, 91) population by sex x single year of age
    decile_share: np.ndarray  # (L, 10) share of the LA's LSOAs in each IMD decile
    decile_start: np.ndarray  # (L, 10) first LSOA index of LA x decile
    decile_count: np.ndarray  # (L, 10)
    la_start: np.ndarray  # (L,) first LSOA index of the LA
    la_count: np.ndarray  # (L,)
    ethnicity_share: np.ndarray  # (L, 6) in bands.ETHNICITIES order
    log_multiplier: np.ndarray  # (L,) log of the per-LA prevalence multiplier
    shift_weeks: np.ndarray  # (L,) regional timing shift
    base_logit: np.ndarray  # (n_curve,) England latent prevalence log-odds per curve week
    curve_offset: int  # curve index of mondays[0]
    region_order: np.ndarray  # (L,) LA indices sorted by region
    region_start: np.ndarray  # (L,) start of the LA's region in region_order
    region_size: np.ndarray  # (L,)
    region_pos: np.ndarray  # (L,) the LA's own position within its region
    pcr_people: np.ndarray  # (L, W) PCR person-weeks to generate
    survey_n: np.ndarray  # (n_bundles, W) survey swabs per bundle x week
    bundles: tuple[np.ndarray, ...]  # LA indices of each bundle
    ranges: tuple[tuple[int, int], ...]  # [start, stop) week indices of each range


def build_world(
    seed: int,
    scale: float,
    start: dt.date,
    weeks: int,
    model: ModelParams,
    chunking: ChunkingParams,
) -> World:
    """Assemble the world; volumes are apportioned exactly (largest remainder)."""
    las = refdata.las()
    mondays = tuple(start + dt.timedelta(weeks=w) for w in range(weeks))
    lsoa = _lsoa_layout(las)
    curve = refdata.england_weekly_pcr().sort("iso_week")
    tested, offset = _curve_values(curve, mondays)
    pop = las["population"].to_numpy().astype(float)
    pcr_people = np.stack([apportion(round(scale * t), pop) for t in tested], axis=1)
    bundles = bundle_las(pop, _n_bundles(scale, tested, weeks, chunking))
    bundle_pop = np.array([pop[b].sum() for b in bundles])
    survey_n = np.stack(
        [apportion(round(scale * model.survey_per_week), bundle_pop) for _ in mondays], axis=1
    )
    step = chunking.weeks_per_range
    ranges = tuple((a, min(a + step, weeks)) for a in range(0, weeks, step))
    return World(
        seed=seed,
        scale=scale,
        mondays=mondays,
        la_codes=las["la_code"].to_numpy(),
        pyramid=_pyramids(las),
        ethnicity_share=_ethnicity_shares(seed, las),
        log_multiplier=rng_for(seed, "la_multiplier").normal(0, model.la_multiplier_sd, las.height),
        shift_weeks=np.array([model.region_shift_weeks[r] for r in las["region_code"]]),
        base_logit=_base_logit(curve, model),
        curve_offset=offset,
        pcr_people=pcr_people,
        survey_n=survey_n,
        bundles=bundles,
        ranges=ranges,
        **lsoa,
        **_region_layout(las),
    )


def apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers summing to ``total`` in proportion to ``weights`` (largest remainder)."""
    quota = total * weights / weights.sum()
    out = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - out), kind="stable")
    out[order[: total - out.sum()]] += 1
    return out


def bundle_las(pop: np.ndarray, n_bundles: int) -> tuple[np.ndarray, ...]:
    """Contiguous runs of LAs (code order) holding roughly equal population."""
    before = (np.cumsum(pop) - pop) / pop.sum()
    ids = np.floor(before * n_bundles).astype(int)
    return tuple(np.flatnonzero(ids == b) for b in np.unique(ids))


def _n_bundles(scale: float, tested: np.ndarray, weeks: int, c: ChunkingParams) -> int:
    records = scale * c.records_per_person_week * tested.sum()
    per_range = records * min(c.weeks_per_range, weeks) / weeks
    return int(min(309, max(c.min_bundles, math.ceil(per_range / c.records_per_chunk))))


def _curve_values(curve: pl.DataFrame, mondays: tuple[dt.date, ...]) -> tuple[np.ndarray, int]:
    """People tested per requested week; outside the real curve, hold the nearest end."""
    first = curve["iso_week"][0]
    offset = (mondays[0] - first).days // 7
    idx = np.clip(offset + np.arange(len(mondays)), 0, curve.height - 1)
    return curve["people_tested"].to_numpy()[idx].astype(float), offset


def _base_logit(curve: pl.DataFrame, model: ModelParams) -> np.ndarray:
    """Latent prevalence log-odds: positivity odds divided by the symptomatic factor."""
    pos = (curve["people_positive"] / curve["people_tested"]).to_numpy()
    return np.log(pos / (1 - pos)) - math.log(model.symptomatic_test_factor)


def _lsoa_layout(las: pl.DataFrame) -> dict:
    idx = las.select("la_code", la=pl.int_range(pl.len()))
    lsoas = (
        refdata.lsoas()
        .select("lsoa11_code", "la_code", "imd_decile")
        .join(idx, on="la_code")
        .sort("la", "imd_decile", "lsoa11_code")
    )
    n_la = las.height
    la_i, dec = lsoas["la"].to_numpy(), lsoas["imd_decile"].to_numpy() - 1
    count = np.zeros((n_la, N_DECILES), dtype=np.int64)
    np.add.at(count, (la_i, dec), 1)
    start = (np.cumsum(count.ravel()) - count.ravel()).reshape(count.shape)
    la_count = count.sum(axis=1)
    return dict(
        lsoa_codes=lsoas["lsoa11_code"].to_numpy(),
        decile_count=count,
        decile_start=start,
        decile_share=count / la_count[:, None],
        la_count=la_count,
        la_start=np.cumsum(la_count) - la_count,
    )


def _pyramids(las: pl.DataFrame) -> np.ndarray:
    pop = refdata.population()
    out = np.zeros((las.height, 2, N_AGES))
    grid = las.select("la_code", la=pl.int_range(pl.len())).join(
        pop, left_on="la_code", right_on="area_code"
    )
    sex = (grid["sex"] == "M").cast(pl.Int64).to_numpy()
    out[grid["la"].to_numpy(), sex, grid["age"].to_numpy()] = grid["population"].to_numpy()
    return out


def _ethnicity_shares(seed: int, las: pl.DataFrame) -> np.ndarray:
    """Region's census-like mix, varied per LA (Dirichlet), plus a fixed UNKNOWN share."""
    rng = rng_for(seed, "ethnicity")
    order = [ETHNICITIES.index(e) for e in ("ASIAN", "BLACK", "MIXED", "WHITE", "OTHER")]
    out = np.zeros((las.height, len(ETHNICITIES)))
    for i, region in enumerate(las["region_code"]):
        known = rng.dirichlet(np.array(REGION_ETHNICITY[region]) * 150 + 0.05)
        out[i, order] = known * (1 - UNKNOWN_ETHNICITY_SHARE)
    out[:, ETHNICITIES.index("UNKNOWN")] = UNKNOWN_ETHNICITY_SHARE
    return out


def _region_layout(las: pl.DataFrame) -> dict:
    region = las["region_code"].to_numpy()
    order = np.argsort(region, kind="stable")
    codes, start, size = np.unique(region[order], return_index=True, return_counts=True)
    r = np.searchsorted(codes, region)
    pos = np.empty(las.height, dtype=np.int64)
    pos[order] = np.arange(las.height) - start[np.searchsorted(codes, region[order])]
    return dict(region_order=order, region_start=start[r], region_size=size[r], region_pos=pos)
