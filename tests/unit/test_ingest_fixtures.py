"""Small, seeded, schema-valid inputs for the ingest tests (real LA and LSOA codes).

Also tests the fixtures themselves, so a broken fixture fails loudly rather than silently
weakening every ingest test.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from lds_dask.contract import refdata
from lds_dask.contract.validation import validate_frame

LAS = ("E06000001", "E08000025", "E09000033", "E07000178")  # Hartlepool, Birmingham, ...


def make_records(n: int, seed: int, las: tuple[str, ...] = LAS, prefix: str = "t") -> pl.DataFrame:
    """``n`` valid test records spread over ``las``; LSOAs drawn from each LA (some null)."""
    rng = np.random.default_rng(seed)
    lsoas = refdata.lsoas().filter(pl.col("la_code").is_in(las))
    by_la = {la: lsoas.filter(pl.col("la_code") == la)["lsoa11_code"].to_list() for la in las}
    la = rng.choice(list(las), n)
    lsoa = [
        None if rng.random() < 0.1 else by_la[code][rng.integers(len(by_la[code]))] for code in la
    ]
    start = dt.date(2021, 1, 4)
    return pl.DataFrame(
        {
            "test_id": [f"{prefix}{seed}-{i}" for i in range(n)],
            "person_id": [f"p{x}" for x in rng.integers(0, max(1, n // 2), n)],
            "specimen_date": [start + dt.timedelta(days=int(d)) for d in rng.integers(0, 28, n)],
            "result": rng.choice(["POSITIVE", "NEGATIVE", "VOID"], n).tolist(),
            "test_type": rng.choice(["PCR", "LFD"], n).tolist(),
            "pillar": pl.Series(rng.choice([1, 2], n), dtype=pl.Int8),
            "lsoa11_code": lsoa,
            "la_code": la.tolist(),
            "age": pl.Series(
                [None if rng.random() < 0.05 else int(a) for a in rng.integers(0, 100, n)],
                dtype=pl.Int16,
            ),
            "sex": rng.choice(["F", "M", "U"], n).tolist(),
            "ethnicity": rng.choice(
                ["ASIAN", "BLACK", "MIXED", "WHITE", "OTHER", "UNKNOWN"], n
            ).tolist(),
            "is_symptomatic": rng.choice([True, False], n).tolist(),
        }
    )


def make_survey(n: int, seed: int, las: tuple[str, ...] = LAS) -> pl.DataFrame:
    """``n`` valid survey responses."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "respondent_id": [f"r{x}" for x in rng.integers(0, n, n)],
            "visit_date": [
                dt.date(2021, 1, 4) + dt.timedelta(days=int(d)) for d in rng.integers(0, 28, n)
            ],
            "la_code": rng.choice(list(las), n).tolist(),
            "age": pl.Series(rng.integers(0, 100, n), dtype=pl.Int16),
            "sex": rng.choice(["F", "M"], n).tolist(),
            "ethnicity": rng.choice(["WHITE", "ASIAN"], n).tolist(),
            "swab_result": rng.choice(["POSITIVE", "NEGATIVE"], n).tolist(),
            "survey_weight": rng.uniform(100, 2000, n),
        }
    )


def make_ahah(seed: int = 1) -> pl.DataFrame:
    """A synthetic AHAH v3 file for every LSOA: ranks are a seeded permutation of 1..N."""
    codes = refdata.lsoas()["lsoa11_code"]
    rng = np.random.default_rng(seed)
    n = codes.len()
    score = rng.normal(size=n)
    cols = {
        c: pl.Series(rng.uniform(0, 10, n))
        for c in (
            "ah3gp",
            "ah3dent",
            "ah3phar",
            "ah3hosp",
            "ah3leis",
            "ah3blue",
            "ah3ffood",
            "ah3gamb",
            "ah3pubs",
            "ah3tob",
            "ah3no2",
            "ah3so2",
            "ah3pm10",
        )
    }
    return pl.DataFrame(
        {
            "lsoa11": codes,
            **cols,
            "ah3gpas": rng.uniform(0, 1, n),
            "ah3h": score,
            "ah3g": score,
            "ah3e": score,
            "ah3r": score,
            "ah3ahah": score,
            "ah3ahah_rn": pl.Series(np.argsort(np.argsort(score)) + 1, dtype=pl.Int32),
        }
    )


def write(df: pl.DataFrame, path: Path) -> Path:
    """Write ``df`` as CSV or parquet by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_csv(path) if path.suffix == ".csv" else df.write_parquet(path)
    return path


def test_fixtures_are_schema_valid():
    assert validate_frame(make_records(500, 1), "test_records").rejected.height == 0
    assert validate_frame(make_survey(200, 1), "survey_responses").rejected.height == 0
    assert validate_frame(make_ahah(), "ahah").rejected.height == 0
