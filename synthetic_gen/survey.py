"""Survey swabs of one bundle-week (COVID-19 Infection Survey-like).

Respondents are drawn over the bundle's cells with probability proportional to population
times an age-specific response rate; the design weight (people represented) undoes the
response rate, so the weighted positive share estimates the population prevalence of the
surveyed ages without bias. Each swab is positive with the cell's true prevalence.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from lds_dask.contract.bands import ETHNICITIES, LDS_BANDS
from lds_dask.contract.schemas import load_schema
from synthetic_gen.cells import Cells, eligible_band_pop
from synthetic_gen.ids import hex_array, mix64
from synthetic_gen.output import codes, dates, labels, optional
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


def survey_table(
    rng: np.random.Generator,
    people: Persons,
    cells: Cells,
    prev: np.ndarray,
    sampling: np.ndarray,
    resp: np.ndarray,
    lookups: dict,
    monday: dt.date,
    key: int,
) -> pa.Table:
    """Typed survey_responses columns as Arrow, by visit date then respondent_id;
    weight = 1 / inclusion probability."""
    n = len(people)
    positive = rng.random(n) < prev[people.row, people.cell]
    weight = sampling.sum() / (max(n, 1) * resp[people.cell])
    days = np.floor(rng.random(n) * 7).astype(np.int8)
    mixed = mix64(people.counter, key)
    order = np.lexsort((mixed, days))  # hex ids sort like their mixed values
    p = people.take(order)
    columns = {
        "respondent_id": hex_array(mixed[order], None),
        "visit_date": dates(monday, days[order]),
        "la_code": codes(lookups["la"], cells.las[p.row]),
        "age": optional(p.age, p.age < 0, np.int16),
        "sex": labels(SEX_CODES, p.sex),
        "ethnicity": labels(ETHNICITIES, cells.ethnicity[p.cell]),
        "swab_result": labels(("NEGATIVE", "POSITIVE"), positive[order]),
        "survey_weight": pa.array(weight[order].astype(np.float64)),
    }
    names = load_schema("survey_responses").columns
    return pa.table([columns[c] for c in names], names=names)
