"""The per-bundle kernel: every count of every breakdown of some LAs, in one polars pass.

One Dask task per LA bundle reads its records once and returns small frames:

* ``counts``: la_code x iso_week x breakdown x category -> tests, positive_tests,
  people_tested, people_positive (all int64);
* ``lsoa``: lsoa11_code x period -> tests, people_tested, people_positive;
* ``survey``: la_code x iso_week -> weighted sums for survey prevalence.

Tests count every record (VOID included) under its own row's categories; people count
the person-weeks the LA owns (see ``cube_people``) under the categories of the owning
test row. Records without an LSOA count everywhere except the ``lsoa`` frame.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from lds_dask.contract.bands import UNKNOWN
from lds_dask.cube.people import KEY, in_scope
from lds_dask.store.read import RECORD_COLUMNS, Store

# breakdown -> its category columns; age_band_esp feeds the DSR and is not a cube node.
BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "total": (),
    "age_band": ("age_band",),
    "sex": ("sex",),
    "ethnicity": ("ethnicity",),
    "imd_decile": ("imd_decile",),
    "imd_quintile": ("imd_quintile",),
    "ahah_quintile": ("ahah_quintile",),
    "age_band_sex": ("age_band", "sex"),
    "age_band_esp": ("age_band_esp",),
}
CATEGORY_COLUMNS = (
    "age_band",
    "sex",
    "ethnicity",
    "imd_decile",
    "imd_quintile",
    "ahah_quintile",
    "age_band_esp",
)
COUNT_COLUMNS = ("tests", "positive_tests", "people_tested", "people_positive")
LSOA_COUNT_COLUMNS = ("tests", "people_tested", "people_positive")


@dataclass(frozen=True)
class CountParams:
    """What the kernel needs from the cube config: people scope and period breaks."""

    people_scope: str = "PCR"
    period_starts: tuple[dt.date, ...] = (dt.date(2020, 9, 1),)
    period_names: tuple[str, ...] = ("wave_1", "wave_2")


def count_bundle(
    bundle: tuple[str, ...], store: Store, params: CountParams, decisions: pl.DataFrame
) -> dict[str, pl.DataFrame | None]:
    """All counts for the LAs of one bundle (see the module docstring)."""
    df = store.read_records(bundle, RECORD_COLUMNS).with_columns(
        *[category(c) for c in CATEGORY_COLUMNS],
        period=period_of(params),
        is_positive=pl.col("result") == "POSITIVE",
    )
    people = own_person_weeks(df, params.people_scope, decisions).collect()
    tests, pw = df.lazy(), people.lazy()
    jobs = [count_breakdown(tests, pw, name, cols) for name, cols in BREAKDOWNS.items()]
    jobs.append(count_lsoa_periods(tests, pw))
    frames = pl.collect_all(jobs)
    return {
        "counts": pl.concat(frames[:-1]),
        "lsoa": frames[-1],
        "survey": sum_survey(store, bundle),
    }


def category(column: str) -> pl.Expr:
    """A category column as a plain string, nulls as 'unknown' (zarr rejects categoricals)."""
    return pl.col(column).cast(pl.String).fill_null(UNKNOWN)


def period_of(params: CountParams) -> pl.Expr:
    """The period name of each record's ISO week (a week belongs to the period holding
    its Monday), so each person-week falls in exactly one period."""
    index = (
        pl.sum_horizontal(
            [(pl.col("iso_week") >= pl.lit(s)).cast(pl.Int32) for s in params.period_starts]
        )
        if params.period_starts
        else pl.lit(0)
    )
    names = pl.Series(list(params.period_names))
    return index.map_batches(lambda i: names.gather(i), return_dtype=pl.String)


def own_person_weeks(df: pl.DataFrame, scope: str, decisions: pl.DataFrame) -> pl.LazyFrame:
    """The person-weeks these LAs own, with the owning (first) test row's categories."""
    return _settle_shared(first_rows(df.lazy().filter(in_scope(scope))), decisions)


def first_rows(tests: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (la_code, person-week): its first test (date, then test_id) with
    ``any_positive``. Most person-weeks have one test, so only the rest are sorted."""
    keys = ["la_code", *KEY]
    cols = [*CATEGORY_COLUMNS, "lsoa11_code", "period"]
    tests = tests.with_columns(n_tests=pl.len().over(keys))
    single = tests.filter(pl.col("n_tests") == 1).select(*keys, *cols, any_positive="is_positive")
    multi = (
        tests.filter(pl.col("n_tests") > 1)
        .sort("specimen_date", "test_id")
        .group_by(keys)
        .agg(pl.col(*cols).first(), any_positive=pl.col("is_positive").any())
    )
    return pl.concat([single, multi], how="vertical_relaxed")


def _settle_shared(pw: pl.LazyFrame, decisions: pl.DataFrame) -> pl.LazyFrame:
    """Drop person-weeks owned by another LA; take the global any-positive flag."""
    if decisions.height == 0:
        return pw
    shared = decisions.lazy().rename({"any_positive": "shared_positive"})
    return (
        pw.join(shared, on=list(KEY), how="left")
        .filter(pl.col("owner_la_code").is_null() | (pl.col("owner_la_code") == pl.col("la_code")))
        .with_columns(any_positive=pl.coalesce("shared_positive", "any_positive"))
        .drop("owner_la_code", "shared_positive")
    )


def count_breakdown(
    tests: pl.LazyFrame, people: pl.LazyFrame, name: str, cols: tuple[str, ...]
) -> pl.LazyFrame:
    """Counts of one breakdown per LA x week x category, as a long frame."""
    keys = ["la_code", "iso_week", *cols]
    t = tests.group_by(keys).agg(tests=pl.len(), positive_tests=pl.col("is_positive").sum())
    p = people.group_by(keys).agg(
        people_tested=pl.len(), people_positive=pl.col("any_positive").sum()
    )
    cats = [pl.col(c).alias(f"cat_{i + 1}") for i, c in enumerate(cols)]
    cats += [pl.lit("").alias(f"cat_{i + 1}") for i in range(len(cols), 2)]
    return t.join(p, on=keys, how="full", coalesce=True).select(
        "la_code",
        "iso_week",
        pl.lit(name).alias("breakdown"),
        *cats,
        *[pl.col(c).fill_null(0).cast(pl.Int64) for c in COUNT_COLUMNS],
    )


def count_lsoa_periods(tests: pl.LazyFrame, people: pl.LazyFrame) -> pl.LazyFrame:
    """Tests and people per LSOA x period; records with no LSOA are left out."""
    keys = ["lsoa11_code", "period"]
    t = (
        tests.filter(pl.col("lsoa11_code").is_not_null())
        .group_by(keys)
        .agg(tests=pl.len(), ahah_decile=pl.col("ahah_decile").drop_nulls().first())
    )
    p = (
        people.filter(pl.col("lsoa11_code").is_not_null())
        .group_by(keys)
        .agg(people_tested=pl.len(), people_positive=pl.col("any_positive").sum())
    )
    return t.join(p, on=keys, how="full", coalesce=True).with_columns(
        pl.col(c).fill_null(0).cast(pl.Int64) for c in LSOA_COUNT_COLUMNS
    )


def sum_survey(store: Store, bundle: tuple[str, ...]) -> pl.DataFrame | None:
    """Weighted survey sums per LA x week: responses, sum(w), sum(w*positive), sum(w^2).

    Sums, not prevalences, so regions and England pool them exactly.
    """
    df = store.read_survey(bundle)
    if df is None:
        return None
    w = pl.col("survey_weight").cast(pl.Float64)
    return (
        df.with_columns(iso_week=pl.col("visit_date").dt.truncate("1w"))
        .group_by("la_code", "iso_week")
        .agg(
            survey_responses=pl.len().cast(pl.Int64),
            weight_sum=w.sum(),
            weighted_positive=(w * (pl.col("swab_result") == "POSITIVE")).sum(),
            weight_sq_sum=(w * w).sum(),
        )
    )
