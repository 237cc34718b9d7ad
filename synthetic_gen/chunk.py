"""One Dask task: a bundle of LAs over a range of weeks, written as one file per week.

Everything random comes from the chunk's own generator, seeded by (seed, bundle, first
week), and identifiers come from the chunk's own id space, so output bytes do not depend
on which worker runs the chunk or in what order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lds_dask import refdata
from lds_dask.bands import LDS_BANDS
from lds_dask.io import file_sha256
from lds_dask.schemas import load_schema
from synthetic_gen.cells import build_cells, pick_without_replacement, prevalence, test_positivity
from synthetic_gen.dirty import dirty_counts, make_dirty_rows
from synthetic_gen.ids import hex_ids, id_key, mix64, rng_for
from synthetic_gen.params import ModelParams
from synthetic_gen.people import Counter, Persons, draw_week, new_persons
from synthetic_gen.prevalence import prevalence_rows
from synthetic_gen.records import lfd_records, pcr_records, record_table, records_frame, sort_by_day
from synthetic_gen.survey import response_rate, survey_frame, survey_population
from synthetic_gen.truth import count_week_table
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
        {k: Persons.empty() for k in ("pcr", "lfd", "survey")},
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
    lsoas = refdata.lsoas().select("lsoa11_code", "la_code")
    lfd_age = np.array([model.lfd_age_uptake[b] for b in LDS_BANDS])[cells.band]
    survey_pop, survey_ages = survey_population(world, cells, model)
    return {
        "lookups": {
            "la": pl.Series(world.la_codes, dtype=pl.String),
            "lsoa": pl.Series(world.lsoa_codes, dtype=pl.String),
        },
        "lsoa_frame": lsoas,
        "keys": {k: id_key(world.seed, k) for k in ("test", "person", "respondent")},
        "pcr_base": cells.pop * cells.uptake[None, :],
        "lfd_base": cells.pop
        * (cells.uptake / np.array([model.age_uptake[b] for b in LDS_BANDS])[cells.band] * lfd_age)[
            None, :
        ],
        "survey_pop": survey_pop,
        "survey_ages": survey_ages,
        "survey_resp": response_rate(cells, model),
        "survey": survey_pop * response_rate(cells, model)[None, :],
    }


def _run_week(world, model, task, cells, ctx, state, week, out) -> None:
    monday = world.mondays[week]
    prev = prevalence(world, cells, week)
    table = _test_table(world, model, cells, ctx, state, week, prev)
    tids = mix64(state.tests.take(table["day"].size), ctx["keys"]["test"])
    out["truth"].append(count_week_table(table, tids, ctx["lookups"]["la"], monday))
    records = records_frame(table, ctx["lookups"], monday, tids, ctx["keys"]).select(
        load_schema("test_records").columns
    )
    path = _week_path(task, "test_records", monday)
    # a separate stream, so clean records do not depend on the format or dirty rate
    dirty_rng = rng_for(world.seed, "dirty", task.bundle, week)
    counts = dirty_counts(dirty_rng, records.height, task.dirty_rate, task.fmt)
    out["files"].append(
        _write(
            _with_dirty(records, counts, task.fmt, ctx, state, dirty_rng),
            path,
            task,
            "test_records",
            records.height,
        )
    )
    for k, v in counts.items():
        out["dirty"][k] = out["dirty"].get(k, 0) + v
    survey = _survey(world, model, cells, ctx, state, week, prev, task.bundle)
    out["files"].append(
        _write(
            survey,
            _week_path(task, "survey_responses", monday),
            task,
            "survey_responses",
            survey.height,
        )
    )
    out["prevalence"].append(prevalence_rows(world, cells, prev, monday, ctx["survey_pop"]))


def _test_table(world, model, cells, ctx, state, week, prev) -> dict:
    rng, monday = state.rng, world.mondays[week]
    n = world.pcr_people[cells.las, week]
    k = model.symptomatic_test_factor
    weights = ctx["pcr_base"] * (1 + (k - 1) * prev)
    people, fresh = draw_week(
        rng,
        state.pools["pcr"],
        n,
        model.repeat_share,
        lambda m: new_persons(rng, world, cells, weights, m, state.persons, model),
    )
    state.pools["pcr"] = Persons.concat([state.pools["pcr"], fresh])
    infected = rng.random(len(people)) < test_positivity(prev, k)[people.row, people.cell]
    tables = [
        record_table(
            pcr_records(rng, world, cells, people, infected, model), people, cells, model, rng
        )
    ]
    first_day, ratio = lfd_schedule(monday, model)
    if ratio > 0:
        lfd_people, lfd_inf = _lfd_people(
            world,
            model,
            cells,
            ctx,
            state,
            people,
            infected,
            np.rint(ratio * n).astype(np.int64),
            prev,
        )
        tables.append(
            record_table(
                lfd_records(rng, cells, lfd_people, lfd_inf, first_day, model),
                lfd_people,
                cells,
                model,
                rng,
            )
        )
    return sort_by_day(tables)


def _lfd_people(world, model, cells, ctx, state, pcr_people, pcr_inf, n, prev):
    """LFD person-weeks: some also PCR-tested this week, the rest from the LFD pool."""
    rng = state.rng
    overlap = pick_without_replacement(
        rng, pcr_people.row, np.rint(model.lfd_overlap_share * n).astype(np.int64)
    )
    rest = n - np.bincount(pcr_people.row[overlap], minlength=len(n))
    others, fresh = draw_week(
        rng,
        state.pools["lfd"],
        rest,
        model.lfd_repeat_share,
        lambda m: new_persons(rng, world, cells, ctx["lfd_base"], m, state.persons, model),
    )
    state.pools["lfd"] = Persons.concat([state.pools["lfd"], fresh])
    inf = rng.random(len(others)) < prev[others.row, others.cell]
    return (
        Persons.concat([pcr_people.take(overlap), others]),
        np.concatenate([pcr_inf[overlap], inf]),
    )


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


def _survey(world, model, cells, ctx, state, week, prev, bundle) -> pl.DataFrame:
    rng, sampling = state.rng, ctx["survey"]
    total = world.survey_n[bundle, week]
    n = rng.multinomial(total, sampling.sum(axis=1) / sampling.sum())
    people, fresh = draw_week(
        rng,
        state.pools["survey"],
        n,
        model.survey_repeat_share,
        lambda m: new_persons(
            rng, world, cells, sampling, m, state.respondents, model, ctx["survey_ages"]
        ),
    )
    state.pools["survey"] = Persons.concat([state.pools["survey"], fresh])
    frame = survey_frame(
        rng,
        people,
        cells,
        prev,
        sampling,
        ctx["survey_resp"],
        ctx["lookups"],
        world.mondays[week],
        ctx["keys"]["respondent"],
    )
    return frame.select(load_schema("survey_responses").columns).sort("visit_date", "respondent_id")


def _with_dirty(
    clean: pl.DataFrame, counts: dict, fmt: str, ctx, state, rng: np.random.Generator
) -> pl.DataFrame:
    if fmt == "csv":
        clean = clean.with_columns(pl.all().cast(pl.String))
    if not any(counts.values()):
        return clean
    n_new = sum(v for k, v in counts.items() if k != "test_id:unique")
    ids = hex_ids(state.tests.take(n_new), ctx["keys"]["test"])
    dirty = make_dirty_rows(rng, clean, counts, ids, ctx["lsoa_frame"])
    return pl.concat([clean, dirty.select(clean.columns).cast(clean.schema)])


def _week_path(task: ChunkTask, table: str, monday: dt.date) -> Path:
    return (
        Path(task.out) / table / f"week={monday.isoformat()}" / f"part-{task.bundle:03d}.{task.fmt}"
    )


def _write(frame: pl.DataFrame, path: Path, task: ChunkTask, table: str, clean: int) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    if task.fmt == "csv":
        frame.with_columns(pl.all().cast(pl.String)).write_csv(path)
    else:
        # string statistics on random ids cost more than they save: write none
        frame.write_parquet(path, compression="zstd", compression_level=1, statistics=False)
    return {
        "path": path.relative_to(task.out).as_posix(),
        "table": table,
        "rows": frame.height,
        "clean_rows": clean,
        "sha256": file_sha256(path),
    }
