"""True prevalence rows of one bundle-week: per LA, per LA x IMD decile, and the survey's
target (ages it samples), all population-weighted over the cells."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from synthetic_gen.cells import CELL_SHAPE, Cells
from synthetic_gen.world import World


def prevalence_rows(
    world: World, cells: Cells, prev: np.ndarray, monday: dt.date, survey_pop: np.ndarray
) -> pl.DataFrame:
    """Long frame: la_code, iso_week, imd_decile (null = all), scope, population,
    prevalence; scope ``all_ages`` or ``survey`` (ages the survey samples)."""
    b = len(cells.las)
    pop, cases = cells.pop, cells.pop * prev
    by_dec = [a.reshape(b, *CELL_SHAPE).sum(axis=(1, 2, 4)) for a in (pop, cases)]
    codes = world.la_codes[cells.las]
    parts = [
        (None, "all_ages", pop.sum(1), cases.sum(1)),
        (None, "survey", survey_pop.sum(1), (survey_pop * prev).sum(1)),
    ]
    parts += [(d + 1, "all_ages", by_dec[0][:, d], by_dec[1][:, d]) for d in range(10)]
    return pl.DataFrame(
        {
            "la_code": np.tile(codes.astype(str), len(parts)),
            "imd_decile": pl.Series(np.repeat([-1 if d is None else d for d, *_ in parts], b))
            .cast(pl.Int8)
            .replace(-1, None),
            "scope": np.repeat([p[1] for p in parts], b),
            "population": np.concatenate([p[2] for p in parts]),
            "cases": np.concatenate([p[3] for p in parts]),
        }
    ).with_columns(iso_week=pl.lit(monday))
