"""Demographic cells of a bundle and their latent prevalence per week.

A cell is LA x sex (F/M) x LDS age band x IMD decile x ethnicity; prevalence and uptake
are constant within it. Its population is the LA pyramid times the LA's decile and
ethnicity shares (independent within an LA, so within-LA comparisons across IMD deciles
are not confounded). Single years of age are drawn within the band from the pyramid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lds_dask.contract.bands import ETHNICITIES, LDS_BANDS
from synthetic_gen.params import ModelParams
from synthetic_gen.world import N_AGES, N_DECILES, World

N_BANDS = len(LDS_BANDS)
CELL_SHAPE = (2, N_BANDS, N_DECILES, len(ETHNICITIES))
N_CELLS = math.prod(CELL_SHAPE)
BAND_LOW = np.array([int(b.rstrip("+").split("-")[0]) for b in LDS_BANDS])
BAND_WIDTH = int(np.max(np.diff(np.append(BAND_LOW, N_AGES))))


@dataclass(frozen=True)
class Cells:
    """Per-cell attributes (``N_CELLS`` long) and per-bundle-LA arrays ``(B, N_CELLS)``."""

    las: np.ndarray  # (B,) global LA indices
    sex: np.ndarray  # (C,) 0 = F, 1 = M
    band: np.ndarray  # LDS band index
    decile: np.ndarray  # 0..9 (decile - 1)
    ethnicity: np.ndarray
    pop: np.ndarray  # (B, C)
    fixed_logit: np.ndarray  # (B, C) log-odds effects that do not vary by week
    uptake: np.ndarray  # (C,) relative PCR testing uptake
    band_pop: np.ndarray  # (B, 2, N_BANDS, BAND_WIDTH) pyramid by age within band


def build_cells(world: World, las: np.ndarray, model: ModelParams) -> Cells:
    """The cell table of one bundle of LAs."""
    sex, band, dec, eth = (a.ravel() for a in np.indices(CELL_SHAPE))
    band_pop = _band_pyramid(world.pyramid[las])
    pop = (
        band_pop.sum(axis=3)[:, sex, band]
        * world.decile_share[las][:, dec]
        * world.ethnicity_share[las][:, eth]
    )
    age_or = np.log([model.age_or[b] for b in LDS_BANDS])[band]
    eth_or = np.log([model.ethnicity_or[e] for e in ETHNICITIES])[eth]
    imd = model.imd_log_odds_per_decile * (dec - 4.5)
    fixed = world.log_multiplier[las][:, None] + (age_or + eth_or + imd)[None, :]
    sex_up = np.array([model.sex_uptake["F"], model.sex_uptake["M"]])[sex]
    imd_up = model.imd_uptake_decile1 + (1 - model.imd_uptake_decile1) * dec / 9
    uptake = np.array([model.age_uptake[b] for b in LDS_BANDS])[band] * sex_up * imd_up
    return Cells(las, sex, band, dec, eth, pop, fixed, uptake, band_pop)


def _band_pyramid(pyramid: np.ndarray, min_age: int = 0) -> np.ndarray:
    """``(B, 2, N_BANDS, BAND_WIDTH)``: population at age BAND_LOW[band] + offset."""
    ages = BAND_LOW[:, None] + np.arange(BAND_WIDTH)[None, :]
    inside = (ages < np.append(BAND_LOW[1:], N_AGES)[:, None]) & (ages >= min_age)
    return np.where(inside, pyramid[:, :, np.minimum(ages, N_AGES - 1)], 0.0)


def eligible_band_pop(world: World, cells: Cells, min_age: int) -> np.ndarray:
    """``band_pop`` restricted to ages >= ``min_age`` (for the survey)."""
    return _band_pyramid(world.pyramid[cells.las], min_age)


def prevalence(world: World, cells: Cells, week: int) -> np.ndarray:
    """Latent prevalence ``(B, C)`` in week index ``week`` (regional timing applied)."""
    t = world.curve_offset + week - world.shift_weeks[cells.las]
    base = np.interp(t, np.arange(len(world.base_logit)), world.base_logit)
    return 1 / (1 + np.exp(-(base[:, None] + cells.fixed_logit)))


def test_positivity(prev: np.ndarray, factor: float) -> np.ndarray:
    """P(infected | tested): the infected test ``factor`` times as often, in every cell."""
    odds = factor * prev / (1 - prev)
    return odds / (1 + odds)


class RowSampler:
    """Categorical draws from the rows of a fixed weight matrix ``(R, K)``.

    The cumulative table is built once, so a chunk reuses it for every week's draws
    (ages by pyramid); one searchsorted over the stacked rows draws them all.
    """

    def __init__(self, weights: np.ndarray):
        totals = weights.sum(axis=1, keepdims=True)
        cum = np.cumsum(weights, axis=1) / np.where(totals > 0, totals, 1)
        self.width = weights.shape[1]
        self.flat = (cum + np.arange(len(weights))[:, None]).ravel()

    def draw(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        """One category per entry of ``rows``, from that row's weights."""
        u = np.minimum(rng.random(rows.size), 1 - 1e-9)
        flat = np.searchsorted(self.flat, rows + u, side="right")
        return np.minimum(flat - rows * self.width, self.width - 1)


def age_sampler(band_pop: np.ndarray) -> RowSampler:
    """Sampler of the offset within band, one row per (bundle LA, sex, band)."""
    return RowSampler(band_pop.reshape(-1, BAND_WIDTH))


def draw_ages(
    rng: np.random.Generator, ages: RowSampler, row: np.ndarray, cell: np.ndarray, cells: Cells
) -> np.ndarray:
    """Single year of age within each person's band, from their LA's pyramid."""
    group = (row * 2 + cells.sex[cell]) * N_BANDS + cells.band[cell]
    return BAND_LOW[cells.band[cell]] + ages.draw(rng, group)


def sample_cells(rng: np.random.Generator, weights: np.ndarray, n: np.ndarray) -> tuple:
    """Draw ``n[b]`` cells from row ``b`` of ``weights`` for every row at once.

    Returns (row, cell) index arrays, sorted by row. Many draws per row: one multinomial
    per row (cost ~ cells, not draws; people come out grouped by cell, which is harmless
    since every later draw is per person). Few draws: one searchsorted per draw.
    """
    if n.sum() < weights.size // 4:
        rows = np.repeat(np.arange(len(n)), n)
        return rows, RowSampler(weights[: len(n)]).draw(rng, rows)
    totals = weights.sum(axis=1, keepdims=True)
    p = np.where(totals > 0, weights / np.where(totals > 0, totals, 1), 1 / weights.shape[1])
    counts = rng.multinomial(n, p).ravel()
    rows, cells = np.indices(weights.shape)
    return np.repeat(rows.ravel(), counts), np.repeat(cells.ravel(), counts)


def pick_without_replacement(
    rng: np.random.Generator, group: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """Indices of about ``k[g]`` distinct random members of each group ``g``.

    Draws ``k[g]`` members with replacement and drops repeats, so a group may get a few
    fewer (callers top up with new people, keeping totals exact). Groups are small ints.
    """
    if group.size == 0:
        return group.astype(np.int64)
    size = np.bincount(group, minlength=len(k))
    k = np.minimum(k, size)
    order = np.argsort(group.astype(np.int16), kind="stable")  # radix sort
    start = np.cumsum(size) - size
    g = np.repeat(np.arange(len(k)), k)
    pos = start[g] + np.floor(rng.random(g.size) * size[g]).astype(np.int64)
    return np.unique(order[pos])
