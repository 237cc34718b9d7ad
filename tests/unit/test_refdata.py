"""The packaged reference geography: counts and totals that must hold exactly, and the
build record that ties each packaged file to the build that wrote it."""

import json

import polars as pl

from lds_dask.contract import refdata
from lds_dask.contract.data import build_refdata


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


def test_packaged_files_are_what_the_build_recorded():
    """Every packaged file has the sha256 and rows build_refdata wrote into its record, and
    nothing unrecorded ships beside them: an edit or a swap without a rebuild fails here."""
    record = json.loads(build_refdata.RECORD.read_text())
    assert set(record["packaged"]) == set(build_refdata.PACKAGED_FILES)
    assert set(record["sources"]) == set(build_refdata.SOURCE_FILES.values())
    for name, facts in record["packaged"].items():
        assert build_refdata.file_facts(refdata.DATA_DIR / name) == facts, name
    kept_by_hand = {"SOURCES.md", build_refdata.RECORD.name}
    shipped = {p.name for p in refdata.DATA_DIR.iterdir() if p.is_file() and p.suffix != ".py"}
    assert shipped - kept_by_hand == set(record["packaged"])


def test_sources_md_names_every_recorded_file_with_its_rows():
    """SOURCES.md's tables agree with the record: each source and packaged file is listed,
    with the record's row count."""
    record = json.loads(build_refdata.RECORD.read_text())
    rows = {}
    for line in refdata.sources_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells
    for name, facts in {**record["sources"], **record["packaged"]}.items():
        assert name in rows, f"{name} is not in SOURCES.md"
        counts = [c.split()[0].replace(",", "") for c in rows[name][1:] if c[:1].isdigit()]
        assert str(facts["rows"]) in counts, f"{name}: SOURCES.md rows {counts} != {facts['rows']}"


def test_file_facts_notice_a_changed_byte(tmp_path):
    original = refdata.DATA_DIR / "esp2013.csv"
    copy = tmp_path / original.name
    copy.write_bytes(original.read_bytes().replace(b"5000", b"5001", 1))
    assert build_refdata.file_facts(copy)["sha256"] != build_refdata.file_facts(original)["sha256"]
