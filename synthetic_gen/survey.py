"""Survey swabs of one bundle-week (COVID-19 Infection Survey-like).

Respondents are drawn over the bundle's cells with probability proportional to population
times an age-specific response rate; the design weight (people represented) undoes the
response rate, so the weighted positive share estimates the population prevalence of the
surveyed ages without bias. Each swab is positive with the cell's true prevalence.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from lds_dask.bands import ETHNICITIES, LDS_BANDS
from synthetic_gen.cells import Cells, eligible_band_pop
from synthetic_gen.ids import hex_ids
from synthetic_gen.params import ModelParams
from synthetic_gen.people import Persons
from synthetic_gen.records import SEX_CODES
from synthetic_gen.world import World


def survey_population(world: World, cells: Cells, model: ModelParams) -> tuple:
    """(eligible population ``(B, C)``, its band pyramid) for ages >= survey_min_age."""
    band_pop = eligible_band_pop(world, cells, model.survey_min_age)
    share = band_pop.sum(axis=3) / np.maximum(cells.band_pop.sum(axis=3), 1e-12)
    return cells.pop * share[:, cells.sex, cells.band], band_pop


def response_rate(cells: Cells, model: ModelParams) -> np.ndarray:
    """Response rate per cell ``(C,)`` (by age band)."""
    return np.array([model.survey_response[b] for b in LDS_BANDS])[cells.band]


def survey_frame(
    rng: np.random.Generator,
    people: Persons,
    cells: Cells,
    prev: np.ndarray,
    sampling: np.ndarray,
    resp: np.ndarray,
    lookups: dict,
    monday: dt.date,
    key: int,
) -> pl.DataFrame:
    """Typed survey_responses columns; weight = 1 / inclusion probability."""
    n = len(people)
    positive = rng.random(n) < prev[people.row, people.cell]
    weight = sampling.sum() / (max(n, 1) * resp[people.cell])
    days = np.floor(rng.random(n) * 7).astype("timedelta64[D]")
    age = people.age
    return pl.DataFrame(
        {
            "respondent_id": hex_ids(people.counter, key),
            "visit_date": np.datetime64(monday, "D") + days,
            "la_code": lookups["la"].gather(cells.las[people.row]),
            "age": pl.Series(age.astype(np.int16)).set(pl.Series(age < 0), None),
            "sex": pl.Series(list(SEX_CODES)).gather(people.sex),
            "ethnicity": pl.Series(ETHNICITIES).gather(cells.ethnicity[people.cell]),
            "swab_result": pl.Series(["NEGATIVE", "POSITIVE"]).gather(positive.astype(np.int64)),
            "survey_weight": weight.astype(np.float64),
        }
    )
