"""End-to-end checks of generated extracts against the truth written beside them."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from lds_dask.contract import refdata
from lds_dask.contract.schemas import load_schema
from lds_dask.runtime.hashing import file_sha256
from synthetic_gen import generate
from synthetic_gen.truth import count_la_weeks

sys.path.insert(0, str(Path(__file__).parent))
from synth_checks import read_all, recount, valid_records  # noqa: E402

SCALE, WEEKS, START = 0.002, 8, dt.date(2020, 12, 21)  # spans the start of LFD testing


@pytest.fixture(scope="module", params=["parquet", "csv"])
def extract(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"synth_{request.param}")
    manifest = generate(
        out,
        scale=SCALE,
        seed=7,
        start=START,
        weeks=WEEKS,
        fmt=request.param,
        dirty_rate=0.02,
        progress=False,
    )
    return out, manifest


def test_dirty_counts_are_exact_per_reason_code(extract):
    out, _ = extract
    _, rule_counts = valid_records(out)
    planted = json.loads((out / "truth" / "dirty_counts.json").read_text())
    assert rule_counts == {k: v for k, v in planted.items() if v}
    assert all(v > 0 for v in planted.values())


def test_truth_equals_counts_recomputed_from_clean_records(extract):
    out, _ = extract
    valid, _ = valid_records(out)
    truth = pl.read_parquet(out / "truth" / "la_week_counts.parquet")
    again = recount(valid)
    joined = truth.join(again, on=["la_code", "iso_week"], how="left").fill_null(0)
    for col in truth.columns[2:]:
        assert (joined[col] == joined[f"{col}_right"]).all(), col
    assert truth.height == 309 * WEEKS
    assert truth["people_tested_all"].sum() > truth["people_tested"].sum()


def test_pcr_people_tested_per_week_within_2pct_of_target(extract):
    out, _ = extract
    truth = pl.read_parquet(out / "truth" / "la_week_counts.parquet")
    weekly = (
        truth.group_by("iso_week")
        .agg(pl.col("people_tested").sum())
        .join(refdata.england_weekly_pcr(), on="iso_week", suffix="_real")
    )
    ratio = weekly["people_tested"] / (SCALE * weekly["people_tested_real"])
    assert weekly.height == WEEKS
    assert ((ratio - 1).abs() <= 0.02).all()


def test_la_shares_follow_population(extract):
    out, _ = extract
    truth = pl.read_parquet(out / "truth" / "la_week_counts.parquet")
    shares = (
        truth.group_by("la_code")
        .agg(pl.col("people_tested").sum())
        .join(refdata.las().select("la_code", "population"), on="la_code")
    )
    got = shares["people_tested"] / shares["people_tested"].sum()
    want = shares["population"] / shares["population"].sum()
    rounding = WEEKS / shares["people_tested"].sum()  # one person per LA-week at most
    assert ((got - want).abs() <= 0.02 * want + rounding).all()


def test_every_clean_la_and_lsoa_is_real(extract):
    out, _ = extract
    valid, _ = valid_records(out)
    assert set(valid["la_code"].unique()) == set(refdata.la_codes())
    lsoas = set(refdata.lsoas()["lsoa11_code"])
    assert set(valid["lsoa11_code"].drop_nulls().unique()) <= lsoas
    assert valid["lsoa11_code"].null_count() > 0


def test_people_repeat_across_weeks_and_some_cross_las(extract):
    out, _ = extract
    valid, _ = valid_records(out)
    weeks = valid.with_columns(iso_week=pl.col("specimen_date").dt.truncate("1w"))
    per_person = weeks.group_by("person_id").agg(pl.col("iso_week").n_unique())
    assert (per_person["iso_week"] > 1).sum() > 0.02 * per_person.height
    las = weeks.group_by("person_id", "iso_week").agg(pl.col("la_code").n_unique())
    cross = (las["la_code"] > 1).mean()
    assert 0.003 < cross < 0.03
    assert set(valid["test_type"].unique()) == {"PCR", "LFD"}
    assert valid.filter(pl.col("test_type") == "LFD")["specimen_date"].min() >= dt.date(2021, 1, 1)


def test_columns_and_dtypes_are_the_schemas(extract):
    out, manifest = extract
    for table in ("test_records", "survey_responses"):
        frame = read_all(out, table)  # CSV is read as text, parquet as stored
        schema = load_schema(table)
        assert frame.columns == schema.columns
        if manifest["format"] == "parquet":
            assert dict(frame.schema) == schema.polars_schema()


def test_files_sort_in_time_order_and_hashes_match(extract):
    out, manifest = extract
    entries = [f for f in manifest["files"] if f["table"] == "test_records"]
    assert [f["path"] for f in entries] == sorted(f["path"] for f in entries)
    weeks = [f["path"].split("/")[1] for f in entries]
    assert weeks == sorted(weeks) and len(set(weeks)) == WEEKS
    for f in manifest["files"]:
        assert file_sha256(out / f["path"]) == f["sha256"]
    assert manifest["counts"]["test_records"]["rows"] == sum(f["rows"] for f in entries)


def test_ahah_is_flagged_synthetic_and_tracks_imd(extract):
    out, _ = extract
    meta = pq.read_schema(out / "ahah.parquet").metadata
    assert meta[b"synthetic"] == b"true"
    ahah = pl.read_parquet(out / "ahah.parquet")
    assert dict(ahah.schema) == load_schema("ahah").polars_schema()
    joined = ahah.join(refdata.lsoas(), left_on="lsoa11", right_on="lsoa11_code")
    assert joined.height == 32_844
    # IMD rank 1 = most deprived; AHAH higher = less healthy, so the two move apart
    assert np.corrcoef(joined["imd_rank"], joined["ah3ahah"])[0, 1] < -0.3


def test_clean_records_do_not_depend_on_format_or_dirty_rate(tmp_path):
    a = generate(tmp_path / "a", scale=0.001, seed=3, weeks=2, progress=False)
    b = generate(tmp_path / "b", scale=0.001, seed=3, weeks=2, dirty_rate=0.05, progress=False)
    ta = pl.read_parquet(tmp_path / "a" / "truth" / "la_week_counts.parquet")
    tb = pl.read_parquet(tmp_path / "b" / "truth" / "la_week_counts.parquet")
    assert ta.equals(tb)
    assert b["counts"]["test_records"]["rows"] > a["counts"]["test_records"]["rows"]


def test_string_definition_of_truth_matches_the_files(extract):
    out, _ = extract
    valid, _ = valid_records(out)
    truth = pl.read_parquet(out / "truth" / "la_week_counts.parquet")
    by_strings = count_la_weeks(valid)
    joined = truth.join(by_strings, on=["la_code", "iso_week"], how="inner")
    assert joined.height == by_strings.height
    for col in truth.columns[2:]:
        assert (joined[col] == joined[f"{col}_right"]).all(), col
