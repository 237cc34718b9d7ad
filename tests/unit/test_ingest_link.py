"""Spec tests for the linked columns, the denominators and the LA bundles."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from test_ingest_fixtures import make_ahah, make_records, write

from lds_dask.contract import bands, refdata
from lds_dask.contract.schemas import CodeTable, code_table, load_schema
from lds_dask.contract.validation import validate_frame
from lds_dask.ingest.link import (
    IMD_DECILES,
    ahah_deciles,
    build_covariates,
    covariates_by_code,
    derive_columns,
    population_frame,
)
from lds_dask.ingest.run import RECORDS, assign_bundles, ingest


def derived(df: pl.DataFrame, ahah=None) -> pl.DataFrame:
    """Validated (coded) rows with the derived columns, decoded back to strings."""
    valid = validate_frame(df, "test_records", coded=True).valid
    out = derive_columns(valid, RECORDS.date_col, covariates_by_code(build_covariates(ahah)))
    coded = {f.name: code_table(f) for f in load_schema("test_records").fields if code_table(f)}
    coded |= {
        "age_band_esp": CodeTable("esp", pl.Series(bands.ESP_LABELS)),
        "age_band": CodeTable("lds", pl.Series(bands.LDS_LABELS)),
    }
    return out.with_columns(t.decode(pl.col(name)).alias(name) for name, t in coded.items())


def test_week_and_age_bands():
    df = make_records(4, 1).with_columns(
        specimen_date=pl.Series(
            [dt.date(2021, 1, 4), dt.date(2021, 1, 10), dt.date(2021, 1, 11), dt.date(2021, 3, 3)]
        ),
        age=pl.Series([0, 14, 85, None], dtype=pl.Int16),
    )
    out = derived(df)
    assert out["iso_week"].to_list() == [
        dt.date(2021, 1, 4),
        dt.date(2021, 1, 4),
        dt.date(2021, 1, 11),
        dt.date(2021, 3, 1),
    ]
    assert out["age_band"].to_list() == ["0-4", "5-14", "85+", "unknown"]
    assert out["age_band_esp"].to_list() == ["0-4", "10-14", "85-89", "unknown"]


def test_joined_deciles_match_refdata_for_sampled_lsoas():
    df = make_records(2000, 7)
    out = derived(df).filter(pl.col("lsoa11_code").is_not_null())
    rng = np.random.default_rng(3)
    sample = out[rng.choice(out.height, 40, replace=False).tolist()]
    ref = refdata.lsoas()
    for row in sample.iter_rows(named=True):
        truth = ref.filter(pl.col("lsoa11_code") == row["lsoa11_code"]).row(0, named=True)
        assert [row[c] for c in IMD_DECILES] == [truth[c] for c in IMD_DECILES]
        assert row["imd_quintile"] == (truth["imd_decile"] + 1) // 2


def test_unknown_lsoa_keeps_its_la_with_null_deciles():
    df = make_records(50, 2).with_columns(lsoa11_code=pl.lit(None, pl.String))
    out = derived(df, make_ahah())
    assert out.height == 50 and out["la_code"].to_list() == df["la_code"].to_list()
    for col in [*IMD_DECILES, "imd_quintile", "ahah_decile", "ahah_quintile"]:
        assert out[col].null_count() == 50


def test_ahah_decile_1_is_the_least_healthy_tenth():
    ahah = pl.DataFrame(
        {
            "lsoa11": [f"E01{i:06d}" for i in range(20)],
            "ah3ahah_rn": pl.Series(range(1, 21), dtype=pl.Int32),
        }
    )
    out = ahah_deciles(ahah)["ahah_decile"].to_list()
    assert out == [10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_ahah_deciles_are_linked_or_null_when_no_file(tmp_path):
    df = make_records(300, 4)
    ahah = make_ahah()
    with_file = ingest(
        [write(df, tmp_path / "a.parquet")],
        tmp_path / "s1",
        ahah=write(ahah, tmp_path / "ahah.parquet"),
        progress=False,
    )
    without = ingest([tmp_path / "a.parquet"], tmp_path / "s2", progress=False)
    assert "null" in without.ahah and with_file.ahah.endswith("ahah.parquet")
    s1 = pl.read_parquet(tmp_path / "s1" / "records").filter(pl.col("lsoa11_code").is_not_null())
    expect = ahah_deciles(ahah).rename({"ahah_decile": "want"})
    joined = s1.join(expect, on="lsoa11_code")
    assert joined.height == s1.height and (joined["ahah_decile"] == joined["want"]).all()
    assert pl.read_parquet(tmp_path / "s2" / "records")["ahah_decile"].null_count() == 300


def test_population_denominators_sum_to_england_and_each_la():
    pop = population_frame()
    england = pop.filter(pl.col("area_code") == refdata.ENGLAND_CODE)
    assert england["population"].sum() == 56_550_138
    assert set(pop["sex"]) == {"F", "M"} and "90+" in set(pop["age_band_esp"])
    by_la = pop.group_by("area_code").agg(pl.col("population").sum())
    check = refdata.las().join(by_la, left_on="la_code", right_on="area_code")
    assert check.height == 309 and (check["population"] == check["population_right"]).all()


def test_bundles_cover_every_la_deterministically_and_balance_population():
    bundles = assign_bundles(8)
    assert set(bundles) == refdata.la_codes() and bundles == assign_bundles(8)
    loads = (
        refdata.las()
        .with_columns(b=pl.col("la_code").replace_strict(bundles))
        .group_by("b")
        .agg(pl.col("population").sum())["population"]
    )
    assert loads.max() / loads.min() < 1.05
