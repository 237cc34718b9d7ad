"""Dirty-data injection: extra rows, each a copy of a clean row with exactly one defect.

Every kind is named by the reason code :func:`lds_dask.contract.validation.validate_frame` gives it
(first failing rule in schema order), so ingest can be held to quarantining exactly the
counts in ``truth/dirty_counts.json``. Dirty rows go after the clean rows of the same file,
so a duplicated ``test_id`` always follows its original.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

ABOLISHED_LA_CODES = ("E07000004", "E07000005", "E07000006", "E07000007")  # Bucks, 2020
BAD_VALUES = {"sex": "X", "result": "INCONCLUSIVE", "ethnicity": "NOT_STATED"}
PARQUET_KINDS = (
    "la_code:in_refdata",
    "lsoa11_code:lsoa_in_la",
    "specimen_date:max",
    "specimen_date:min",
    "age:max",
    "sex:enum",
    "result:enum",
    "ethnicity:enum",
    "person_id:not_null",
    "test_id:unique",
)
CSV_ONLY_KINDS = ("specimen_date:dtype", "age:dtype")


def dirty_kinds(fmt: str) -> tuple[str, ...]:
    return PARQUET_KINDS + (CSV_ONLY_KINDS if fmt == "csv" else ())


def dirty_counts(rng: np.random.Generator, n_clean: int, rate: float, fmt: str) -> dict:
    """Rows per kind for one file: ``rate * n_clean / n_kinds``, stochastically rounded."""
    kinds = dirty_kinds(fmt)
    if rate <= 0 or n_clean == 0:
        return dict.fromkeys(kinds, 0)
    mean = rate * n_clean / len(kinds)
    return {k: int(np.floor(mean + rng.random())) for k in kinds}


def make_dirty_rows(
    rng: np.random.Generator,
    clean: pl.DataFrame,
    counts: dict,
    new_ids: pl.Series,
    lsoa_lookup: pl.DataFrame,
) -> pl.DataFrame:
    """Dirty rows for one file (as text when ``clean`` is text, i.e. CSV)."""
    parts, used = [], 0
    for kind, n in counts.items():
        if n == 0:
            continue
        rows = clean[rng.integers(0, clean.height, n)]
        if kind != "test_id:unique":
            rows = rows.with_columns(test_id=new_ids[used : used + n])
            used += n
        parts.append(_apply_defect(rng, rows, kind, lsoa_lookup))
    return pl.concat(parts) if parts else clean.clear()


def _apply_defect(
    rng: np.random.Generator, rows: pl.DataFrame, kind: str, lsoa_lookup: pl.DataFrame
) -> pl.DataFrame:
    field, rule = kind.split(":")
    text = rows.schema["specimen_date"] == pl.String
    n = rows.height
    if kind == "la_code:in_refdata":
        codes = [ABOLISHED_LA_CODES[i] for i in rng.integers(0, 4, n)]
        return rows.with_columns(la_code=pl.Series(codes), lsoa11_code=pl.lit(None, pl.String))
    if kind == "lsoa11_code:lsoa_in_la":
        return rows.with_columns(lsoa11_code=_foreign_lsoa(rng, rows["la_code"], lsoa_lookup))
    if field == "specimen_date" and rule in ("max", "min"):
        first = dt.date(2099, 1, 1) if rule == "max" else dt.date(2019, 1, 1)
        dates = pl.Series(
            np.datetime64(first, "D") + rng.integers(0, 365, n).astype("timedelta64[D]")
        )
        return rows.with_columns(specimen_date=dates.cast(pl.String) if text else dates)
    if kind == "age:max":
        return rows.with_columns(age=pl.lit("999" if text else 999, rows.schema["age"]))
    if rule == "enum":
        return rows.with_columns(pl.lit(BAD_VALUES[field]).alias(field))
    if kind == "person_id:not_null":
        return rows.with_columns(person_id=pl.lit(None, pl.String))
    if kind == "specimen_date:dtype":
        return rows.with_columns(specimen_date=pl.lit("2021-02-30"))
    if kind == "age:dtype":
        return rows.with_columns(age=pl.lit("forty"))
    return rows  # test_id:unique keeps the original's test_id: that is the defect


def _foreign_lsoa(rng: np.random.Generator, la_codes: pl.Series, lookup: pl.DataFrame) -> pl.Series:
    """A real LSOA lying in some other LA than each row's own."""
    idx = rng.integers(0, lookup.height, la_codes.len())
    clash = lookup["la_code"].gather(idx) == la_codes
    while clash.any():
        idx = np.where(clash.to_numpy(), (idx + 997) % lookup.height, idx)
        clash = lookup["la_code"].gather(idx) == la_codes
    return lookup["lsoa11_code"].gather(idx)
