"""Exact reconciliation on generator data: quarantine counts per reason equal the planted truth."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

import synthetic_gen
from lds_dask.ingest.run import ingest
from lds_dask.store.layout import verify_store


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_ingest_recovers_the_generator_truth(tmp_path, fmt):
    gen = tmp_path / "gen"
    manifest = synthetic_gen.generate(
        gen,
        scale=0.001,
        seed=11,
        start=dt.date(2021, 1, 4),
        weeks=4,
        fmt=fmt,
        dirty_rate=0.01,
        progress=False,
    )
    report = ingest(
        [gen / "test_records"],
        tmp_path / "s",
        survey=gen / "survey_responses",
        ahah=gen / "ahah.parquet",
        progress=False,
    )
    records = [f for f in report.files if f["table"] == "test_records"]
    found: dict[str, int] = {}
    for f in records:
        for rule, n in f["reasons"].items():
            found[rule] = found.get(rule, 0) + n
    truth = json.loads((gen / "truth" / "dirty_counts.json").read_text())
    assert found == {k: v for k, v in truth.items() if v} and sum(truth.values()) > 0
    counts = manifest["counts"]
    assert sum(f["rows_stored"] for f in records) == counts["test_records"]["clean_rows"]
    assert sum(f["rows_in"] for f in records) == counts["test_records"]["rows"]
    stored = pl.read_parquet(tmp_path / "s" / "records", hive_partitioning=True)
    by_la_week = stored.group_by("la_code", "iso_week").agg(tests=pl.len())
    want = pl.read_parquet(gen / "truth" / "la_week_counts.parquet").select(
        "la_code", "iso_week", "tests"
    )
    joined = want.filter(pl.col("tests") > 0).join(
        by_la_week, on=["la_code", "iso_week"], how="full", coalesce=True
    )
    assert (joined["tests"] == joined["tests_right"]).all()
    survey = pl.read_parquet(tmp_path / "s" / "survey", hive_partitioning=True)
    assert survey.height == counts["survey_responses"]["clean_rows"]
    assert stored["ahah_decile"].is_not_null().any()
    verify_store(tmp_path / "s")
