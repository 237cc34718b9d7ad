"""The packaged reference geography: counts and totals that must hold exactly."""

import polars as pl

from lds_dask.contract import refdata


def test_309_las_in_9_regions():
    las = refdata.las()
    assert las.height == 309
    assert las["la_code"].n_unique() == 309
    assert las["la_code"].str.contains(r"^E0[6-9]\d{6}$").all()
    assert refdata.regions().height == 9
    assert refdata.las()["region_code"].str.starts_with("E12").all()


def test_utlas_are_counties_or_the_la_itself():
    las = refdata.las()
    own = las.filter(pl.col("utla_code") == pl.col("la_code"))
    county = las.filter(pl.col("utla_code") != pl.col("la_code"))
    assert county["utla_code"].str.starts_with("E10").all()
    assert own["la_code"].str.contains(r"^E0[689]").all()
    assert refdata.utlas().height == own.height + county["utla_code"].n_unique()


def test_32844_lsoas_each_in_exactly_one_known_la():
    lsoas = refdata.lsoas()
    assert lsoas.height == 32_844
    assert lsoas["lsoa11_code"].n_unique() == 32_844
    assert set(lsoas["la_code"].unique()) == refdata.la_codes()
    assert lsoas["imd_decile"].min() == 1 and lsoas["imd_decile"].max() == 10


def test_england_population_and_la_sum():
    pop = refdata.population()
    england = pop.filter(pl.col("area_code") == refdata.ENGLAND_CODE)["population"].sum()
    assert england == 56_550_138
    la_sum = pop.filter(pl.col("area_code").is_in(list(refdata.la_codes())))["population"].sum()
    assert la_sum == england
    assert refdata.las()["population"].sum() == england


def test_esp2013_sums_to_100000():
    esp = refdata.esp2013()
    assert esp.height == 19 and esp["esp_population"].sum() == 100_000


def test_hexmap_boundaries_curve_restrictions():
    assert refdata.hexmap().height == 309
    b = refdata.boundaries()
    covered = {c for codes in b["la_codes"] for c in codes.split(",")}
    assert covered == refdata.la_codes()
    curve = refdata.england_weekly_pcr()
    assert curve.height == 52
    assert (curve["iso_week"].dt.weekday() == 1).all()  # Mondays
    assert 60e6 < curve["people_tested"].sum() < 75e6
    assert refdata.restrictions().height >= 8


def test_packaged_data_matches_shared_source(shared_dir):
    src = pl.read_csv(shared_dir / "refdata" / "mhclg_imd2019_lsoa11_lad21_england.csv")
    joined = src.join(refdata.lsoas(), on="lsoa11_code")
    assert joined.height == 32_844
    assert (joined["imd19_imd_decile"] == joined["imd_decile"]).all()
    assert (joined["lad21_code"] == joined["la_code"]).all()
