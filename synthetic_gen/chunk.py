"""One Dask task: a bundle of LAs over a range of weeks, written as one file per week.

Everything random comes from the chunk's own generator, seeded by (seed, bundle, first
week), and identifiers come from the chunk's own id space, so output bytes do not depend
on which worker runs the chunk or in what order. Nothing here depends on thread timing:
records are built in numpy and written by pyarrow, and the truth is counted by bincount.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from lds_dask.contract import refdata
from lds_dask.contract.bands import LDS_BANDS
from synthetic_gen.cells import (
    age_sampler,
    build_cells,
    pick_without_replacement,
    prevalence,
    test_positivity,
)
from synthetic_gen.dirty import dirty_counts, make_dirty_rows
from synthetic_gen.ids import hex_ids, id_key, mix64, rng_for
from synthetic_gen.output import to_polars, write_file
from synthetic_gen.params import ModelParams
from synthetic_gen.people import Counter, Persons, Pool, draw_week, new_persons
from synthetic_gen.prevalence import prevalence_rows
from synthetic_gen.records import (
    POS,
    lfd_records,
    pcr_records,
    record_table,
    records_table,
    sort_by_day,
)
from synthetic_gen.survey import response_rate, survey_population, survey_table
from synthetic_gen.truth import count_week
from synthetic_gen.world import World

ID_SPACE_BITS = 40  # ids of chunk i are i << 40 + a local counter


@dataclass(frozen=True)
class ChunkTask:
    """Where a chunk sits and how it writes."""

    index: int
    bundle: int
    weeks: tuple[int, int]
    out: str
    fmt: str
    dirty_rate: float


@dataclass
class ChunkState:
    """Everything that persists across the weeks of one chunk."""

    rng: np.random.Generator
    pools: dict
    persons: Counter
    tests: Counter
    respondents: Counter


def run_chunk(world: World, model: ModelParams, task: ChunkTask) -> dict:
    """Generate, write and count one chunk; return file entries and truth partials."""
    cells = build_cells(world, world.bundles[task.bundle], model)
    base = task.index << ID_SPACE_BITS
    state = ChunkState(
        rng_for(world.seed, "chunk", task.bundle, task.weeks[0]),
        {k: Pool(len(cells.las)) for k in ("pcr", "lfd", "survey")},
        Counter(base),
        Counter(base),
        Counter(base),
    )
    ctx = _context(world, model, cells)
    out = {"files": [], "truth": [], "prevalence": [], "dirty": {}}
    for week in range(*task.weeks):
        _run_week(world, model, task, cells, ctx, state, week, out)
    out["truth"] = pl.concat(out["truth"])
    out["prevalence"] = pl.concat(out["prevalence"])
    return out


def _context(world: World, model: ModelParams, cells) -> dict:
    lfd_age = np.array([model.lfd_age_uptake[b] for b in LDS_BANDS])[cells.band]
    pcr_age = np.array([model.age_uptake[b] for b in LDS_BANDS])[cells.band]
    survey_pop, survey_ages = survey_population(world, cells, model)
    return {
        "lookups": {
            "la": pa.array(world.la_codes.astype(str)),
            "lsoa": pa.array(world.lsoa_codes.astype(str)),
        },
        "la_series": pl.Series(world.la_codes, dtype=pl.String),
        "lsoa_frame": refdata.lsoas().select("lsoa11_code", "la_code"),
        "keys": {k: id_key(world.seed, k) for k in ("test", "person", "respondent")},
        "ages": age_sampler(cells.band_pop),
        "pcr_base": cells.pop * cells.uptake[None, :],
        "lfd_base": cells.pop * (cells.uptake / pcr_age * lfd_age)[None, :],
        "survey_pop": survey_pop,
        "survey_ages": age_sampler(survey_ages),
        "survey_resp": response_rate(cells, model),
        "survey": survey_pop * response_rate(cells, model)[None, :],
    }


def _run_week(world, model, task, cells, ctx, state, week, out) -> None:
    monday = world.mondays[week]
    prev = prevalence(world, cells, week)
    table, tested = _test_table(world, model, cells, ctx, state, week, prev)
    tids = mix64(state.tests.take(table["day"].size), ctx["keys"]["test"])
    out["truth"].append(count_week(table, *tested, ctx["la_series"], monday))
    records = records_table(table, ctx["lookups"], monday, tids, ctx["keys"])
    # a separate stream, so clean records do not depend on the format or dirty rate
    dirty_rng = rng_for(world.seed, "dirty", task.bundle, week)
    counts = dirty_counts(dirty_rng, records.num_rows, task.dirty_rate, task.fmt)
    records = _with_dirty(records, counts, task.fmt, ctx, state, dirty_rng)
    out["files"].append(_write(records, task, "test_records", monday, table["day"].size))
    for k, v in counts.items():
        out["dirty"][k] = out["dirty"].get(k, 0) + v
    survey = _survey(world, model, cells, ctx, state, week, prev, task.bundle)
    out["files"].append(_write(survey, task, "survey_responses", monday, survey.num_rows))
    out["prevalence"].append(prevalence_rows(world, cells, prev, monday, ctx["survey_pop"]))


def _test_table(world, model, cells, ctx, state, week, prev) -> tuple[dict, tuple]:
    """The week's test records (numpy columns, by day) and the truth's people:
    (home LA, positive) of PCR person-weeks and of all person-weeks."""
    rng, monday = state.rng, world.mondays[week]
    n = world.pcr_people[cells.las, week]
    k = model.symptomatic_test_factor
    maker = _maker(world, model, cells, state, ctx["pcr_base"] * (1 + (k - 1) * prev), ctx["ages"])
    people = draw_week(rng, state.pools["pcr"], n, model.repeat_share, maker)
    infected = rng.random(len(people)) < test_positivity(prev, k)[people.row, people.cell]
    pcr = pcr_records(rng, world, cells, people, infected, model)
    pcr = record_table(pcr, people, cells, model, rng)
    pcr_tested = (cells.las[people.row], infected)
    if lfd_schedule(monday, model)[1] == 0:
        return sort_by_day([pcr]), (pcr_tested, pcr_tested)
    lfd, everyone = _lfd_tests(world, model, cells, ctx, state, week, prev, people, infected)
    return sort_by_day([pcr, lfd]), (pcr_tested, everyone)


def _lfd_tests(world, model, cells, ctx, state, week, prev, pcr_people, pcr_inf) -> tuple:
    """LFD records of the week's LFD person-weeks (some also PCR-tested this week) and
    (home LA, positive) of everyone tested this week, PCR people first."""
    rng = state.rng
    first_day, ratio = lfd_schedule(world.mondays[week], model)
    n = np.rint(ratio * world.pcr_people[cells.las, week]).astype(np.int64)
    overlap = pick_without_replacement(
        rng, pcr_people.row, np.rint(model.lfd_overlap_share * n).astype(np.int64)
    )
    rest = n - np.bincount(pcr_people.row[overlap], minlength=len(n))
    maker = _maker(world, model, cells, state, ctx["lfd_base"], ctx["ages"])
    others = draw_week(rng, state.pools["lfd"], rest, model.lfd_repeat_share, maker)
    others_inf = rng.random(len(others)) < prev[others.row, others.cell]
    people = Persons.concat([pcr_people.take(overlap), others])
    infected = np.concatenate([pcr_inf[overlap], others_inf])
    rec = lfd_records(rng, cells, people, infected, first_day, model)
    any_pos = np.bincount(rec["src"][rec["result"] == POS], minlength=len(people)) > 0
    positive = pcr_inf.copy()
    positive[overlap] |= any_pos[: overlap.size]
    everyone = (
        np.concatenate([cells.las[pcr_people.row], cells.las[others.row]]),
        np.concatenate([positive, any_pos[overlap.size :]]),
    )
    return record_table(rec, people, cells, model, rng), everyone


def _maker(world, model, cells, state, weights, ages, counter=None):
    """``make_new`` for :func:`draw_week`: new people drawn from cell ``weights``."""
    rng, counter = state.rng, state.persons if counter is None else counter
    return lambda m: new_persons(rng, world, cells, weights, m, counter, model, ages)


def lfd_schedule(monday: dt.date, model: ModelParams) -> tuple[int, float]:
    """First LFD day of this week and LFD person-weeks per PCR person-week (0 before LFD)."""
    first_day = max(0, (model.lfd_start - monday).days)
    if first_day > 6:
        return 7, 0.0
    ramp = (monday - model.lfd_start).days / (model.lfd_full - model.lfd_start).days
    ratio = model.lfd_people_ratio_start + (
        model.lfd_people_ratio_full - model.lfd_people_ratio_start
    ) * min(max(ramp, 0), 1)
    return first_day, ratio * (7 - first_day) / 7


def _survey(world, model, cells, ctx, state, week, prev, bundle) -> pa.Table:
    rng, sampling = state.rng, ctx["survey"]
    total = world.survey_n[bundle, week]
    n = rng.multinomial(total, sampling.sum(axis=1) / sampling.sum())
    maker = _maker(world, model, cells, state, sampling, ctx["survey_ages"], state.respondents)
    people = draw_week(rng, state.pools["survey"], n, model.survey_repeat_share, maker)
    monday, key = world.mondays[week], ctx["keys"]["respondent"]
    resp = ctx["survey_resp"]
    return survey_table(rng, people, cells, prev, sampling, resp, ctx["lookups"], monday, key)


def _with_dirty(clean: pa.Table, counts: dict, fmt: str, ctx, state, rng: np.random.Generator):
    """The clean table as is, or (with defects to inject, or for CSV) a polars frame with
    the dirty rows after the clean ones."""
    if not any(counts.values()):
        return clean
    frame = to_polars(clean, "test_records")
    if fmt == "csv":
        frame = frame.with_columns(pl.all().cast(pl.String))
    n_new = sum(v for k, v in counts.items() if k != "test_id:unique")
    ids = hex_ids(state.tests.take(n_new), ctx["keys"]["test"])
    dirty = make_dirty_rows(rng, frame, counts, ids, ctx["lsoa_frame"])
    return pl.concat([frame, dirty.select(frame.columns).cast(frame.schema)])


def _write(data, task: ChunkTask, table: str, monday: dt.date, clean: int) -> dict:
    name = f"part-{task.bundle:03d}.{task.fmt}"
    path = Path(task.out) / table / f"week={monday.isoformat()}" / name
    return {
        "path": path.relative_to(task.out).as_posix(),
        "table": table,
        "rows": data.num_rows if isinstance(data, pa.Table) else data.height,
        "clean_rows": clean,
        "sha256": write_file(data, path, task.fmt, table),
    }
