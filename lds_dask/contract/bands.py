"""Derived classification columns shared by the generator, ingest and the cube.

Age bands: the 19 ESP2013 five-year bands (for age standardisation) and the 10 LDS report
bands. ISO weeks are labelled by their Monday. IMD quintile 1 = most deprived 20%.
"""

from __future__ import annotations

from functools import cache

import polars as pl

ESP_BANDS = [f"{a}-{a + 4}" for a in range(0, 90, 5)] + ["90+"]
LDS_BANDS = ["0-4", "5-14", "15-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+"]
UNKNOWN = "unknown"
ESP_LABELS, LDS_LABELS = [*ESP_BANDS, UNKNOWN], [*LDS_BANDS, UNKNOWN]
MAX_AGE = 120  # the schemas' age maximum
SEXES = ["F", "M", "U"]
ETHNICITIES = ["ASIAN", "BLACK", "MIXED", "WHITE", "OTHER", "UNKNOWN"]


def _band_expr(age: pl.Expr, lower_bounds: list[int], labels: list[str]) -> pl.Expr:
    expr = pl.when(age.is_null()).then(pl.lit(UNKNOWN))
    for low, label in zip(reversed(lower_bounds), reversed(labels), strict=True):
        expr = expr.when(age >= low).then(pl.lit(label))
    return expr.otherwise(pl.lit(UNKNOWN))


def esp_band(age: str | pl.Expr = "age") -> pl.Expr:
    """ESP2013 five-year band label (0-4 .. 85-89, 90+) or 'unknown'."""
    age = pl.col(age) if isinstance(age, str) else age
    return _band_expr(age, list(range(0, 95, 5)), ESP_BANDS)


def lds_band(age: str | pl.Expr = "age") -> pl.Expr:
    """LDS report band (0-4, 5-14, ..., 75-84, 85+) or 'unknown'."""
    age = pl.col(age) if isinstance(age, str) else age
    return _band_expr(age, [0, 5, 15, 25, 35, 45, 55, 65, 75, 85], LDS_BANDS)


def esp_to_lds(esp_label: str) -> str:
    """The LDS band containing an ESP band (every ESP band nests in one LDS band)."""
    low = int(esp_label.rstrip("+").split("-")[0])
    return next(lds for lds in reversed(LDS_BANDS) if low >= int(lds.rstrip("+").split("-")[0]))


def iso_week(date: str | pl.Expr = "specimen_date") -> pl.Expr:
    """The Monday of the ISO week holding ``date``."""
    date = pl.col(date) if isinstance(date, str) else date
    return date.dt.truncate("1w")


def quintile_from_decile(decile: str | pl.Expr) -> pl.Expr:
    """Quintile 1..5 from decile 1..10 (1 = most deprived / least healthy)."""
    decile = pl.col(decile) if isinstance(decile, str) else decile
    return ((decile + 1) // 2).cast(pl.Int8)


@cache
def band_codes(kind: str) -> pl.Series:
    """Band code (row of ESP_LABELS or LDS_LABELS) of each age 0..MAX_AGE, then of an unknown
    age: the bands above, as a lookup table for integer-coded rows."""
    expr, labels = {"esp": (esp_band, ESP_LABELS), "lds": (lds_band, LDS_LABELS)}[kind]
    ages = pl.DataFrame({"age": [*range(MAX_AGE + 1), None]}, schema={"age": pl.Int16})
    return ages.select(encode_labels(expr("age"), labels))[:, 0]


def encode_labels(expr: pl.Expr, labels: list[str]) -> pl.Expr:
    return expr.cast(pl.Enum(labels)).to_physical()
