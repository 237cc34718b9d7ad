"""Test records of one bundle-week: PCR person-weeks (with extras, VOIDs and cross-LA
tests) and LFD person-weeks, as numpy columns; then one typed Arrow table.

Ownership stays with the home LA by construction: every person-week's first test is a
non-VOID test in the home LA and a cross-LA test is always on a strictly later day.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from lds_dask.contract.bands import ETHNICITIES
from lds_dask.contract.schemas import load_schema
from synthetic_gen.cells import Cells
from synthetic_gen.ids import hex_array
from synthetic_gen.output import codes, dates, labels, optional
from synthetic_gen.params import ModelParams
from synthetic_gen.people import Persons
from synthetic_gen.world import World

RESULTS = ("POSITIVE", "NEGATIVE", "VOID")
TEST_TYPES = ("PCR", "LFD")
SEX_CODES = ("F", "M", "U")
DAY_WEIGHTS = np.array([1.1, 1.1, 1.05, 1.0, 1.0, 0.9, 0.85])
POS, NEG, VOID = 0, 1, 2
COLUMNS = ("src", "day", "la", "lsoa", "result", "test_type", "symptomatic")


def pcr_records(
    rng: np.random.Generator,
    world: World,
    cells: Cells,
    people: Persons,
    infected: np.ndarray,
    model: ModelParams,
) -> dict:
    """One primary test per person-week plus Bernoulli extras, VOIDs and cross-LA tests."""
    n = len(people)
    cross = rng.random(n) < model.cross_la_share
    day = _days(rng, n, 0, np.where(cross, 6, 7))
    home_la = cells.las[people.row]
    res = np.where(infected, POS, NEG)
    parts = [_part(np.arange(n), day, home_la, people.lsoa, res)]
    extra = np.flatnonzero(rng.random(n) < model.extra_pcr_prob)
    parts.append(
        _part(
            extra,
            _days(rng, extra.size, day[extra], 7),
            home_la[extra],
            people.lsoa[extra],
            res[extra],
        )
    )
    void = np.flatnonzero(rng.random(n) < model.void_prob)
    parts.append(
        _part(
            void,
            _days(rng, void.size, 0, 7),
            home_la[void],
            people.lsoa[void],
            np.full(void.size, VOID),
        )
    )
    c = np.flatnonzero(cross)
    other = _other_la_in_region(rng, world, home_la[c])
    lsoa = world.la_start[other] + np.floor(rng.random(c.size) * world.la_count[other])
    lsoa = np.where(rng.random(c.size) < 0.5, -1, lsoa.astype(np.int64))
    parts.append(_part(c, _days(rng, c.size, day[c] + 1, 7), other, lsoa, res[c]))
    out = _concat(parts)
    sym_p = np.where(infected[out["src"]], model.symptomatic_if_infected, model.symptomatic_if_not)
    out["symptomatic"] = _symptoms(rng, sym_p, model)
    out["test_type"] = np.zeros(out["src"].size, dtype=np.int8)
    return out


def lfd_records(
    rng: np.random.Generator,
    cells: Cells,
    people: Persons,
    infected: np.ndarray,
    first_day: int,
    model: ModelParams,
) -> dict:
    """One or two LFD tests per person-week on days from ``first_day``; imperfect accuracy."""
    n = len(people)
    idx = np.concatenate([np.arange(n), np.flatnonzero(rng.random(n) < model.lfd_second_test_prob)])
    p_pos = np.where(infected[idx], model.lfd_sensitivity, model.lfd_false_positive_rate)
    out = _part(
        idx,
        _days(rng, idx.size, first_day, 7),
        cells.las[people.row[idx]],
        people.lsoa[idx],
        np.where(rng.random(idx.size) < p_pos, POS, NEG),
    )
    out["symptomatic"] = _symptoms(rng, np.full(idx.size, 0.05), model)
    out["test_type"] = np.ones(idx.size, dtype=np.int8)
    return out


def _part(src, day, la, lsoa, result) -> dict:
    """Record columns in the narrowest dtypes (cheaper to concatenate and reorder)."""
    return {
        "src": np.asarray(src, np.int64),
        "day": np.asarray(day, np.int8),
        "la": np.asarray(la, np.int16),
        "lsoa": np.asarray(lsoa, np.int32),
        "result": np.asarray(result, np.int8),
    }


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _days(rng: np.random.Generator, n: int, low, high) -> np.ndarray:
    """Day of week in [low, high), weekday-weighted when the full week is allowed."""
    low, high = np.broadcast_to(low, n), np.broadcast_to(high, n)
    cum = np.cumsum(DAY_WEIGHTS) / DAY_WEIGHTS.sum()
    weighted = np.searchsorted(cum, rng.random(n), side="right")
    uniform = low + np.floor(rng.random(n) * (high - low)).astype(np.int64)
    full = (low == 0) & (high == 7)
    return np.where(full, np.minimum(weighted, 6), uniform)


def _symptoms(rng: np.random.Generator, p: np.ndarray, model: ModelParams) -> np.ndarray:
    """0 = no, 1 = yes, 2 = not asked."""
    u = rng.random((2, p.size))
    return np.where(u[0] < model.symptom_unasked_share, 2, u[1] < p).astype(np.int8)


def _other_la_in_region(rng: np.random.Generator, world: World, la: np.ndarray) -> np.ndarray:
    j = np.floor(rng.random(la.size) * (world.region_size[la] - 1)).astype(np.int64)
    j = j + (j >= world.region_pos[la])
    return world.region_order[world.region_start[la] + j]


def record_table(
    rec: dict, people: Persons, cells: Cells, model: ModelParams, rng: np.random.Generator
) -> dict:
    """Record-level numeric columns (person attributes gathered, pillar drawn)."""
    src = rec.pop("src")
    cell = people.cell[src]
    p1 = np.where(cells.band[cell] == 9, model.pillar1_share_85plus, model.pillar1_share)
    pillar1 = (rec["test_type"] == 0) & (rng.random(src.size) < p1)
    rec["pillar"] = np.where(pillar1, 1, 2).astype(np.int8)
    rec.update(
        person=people.counter[src],
        age=people.age[src],
        sex=people.sex[src],
        ethnicity=cells.ethnicity[cell],
    )
    return rec


def sort_by_day(parts: list[dict]) -> dict:
    """Concatenate record tables and order them by day (stable), before any strings exist."""
    table = _concat(parts)
    order = np.argsort(table["day"], kind="stable")  # int8: a radix sort
    return {k: v[order] for k, v in table.items()}


def records_table(
    t: dict, lookups: dict, monday: dt.date, mixed_test_ids: np.ndarray, keys: dict
) -> pa.Table:
    """Typed test_records columns as Arrow, in schema order, straight from numpy."""
    age, sym, lsoa = t["age"], t["symptomatic"], t["lsoa"]
    columns = {
        "test_id": hex_array(mixed_test_ids, None),
        "person_id": hex_array(t["person"], keys["person"]),
        "specimen_date": dates(monday, t["day"]),
        "result": labels(RESULTS, t["result"]),
        "test_type": labels(TEST_TYPES, t["test_type"]),
        "pillar": pa.array(t["pillar"].astype(np.int8)),
        "lsoa11_code": codes(lookups["lsoa"], np.maximum(lsoa, 0), lsoa < 0),
        "la_code": codes(lookups["la"], t["la"]),
        "age": optional(age, age < 0, np.int16),
        "sex": labels(SEX_CODES, t["sex"]),
        "ethnicity": labels(ETHNICITIES, t["ethnicity"]),
        "is_symptomatic": optional(sym == 1, sym == 2, np.bool_),
    }
    names = load_schema("test_records").columns
    return pa.table([columns[c] for c in names], names=names)
