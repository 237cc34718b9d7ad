"""Rebuild the packaged reference data from the published source files.

Run by a maintainer (``python -m lds_dask.contract.data.build_refdata SOURCE_DIR``, the
folder holding the files named in :data:`SOURCE_FILES`, described in SOURCES.md); the
outputs are committed, so users and CI never need the source folder. The build is
byte-reproducible.

What it does, and why:
- renames columns to the project's one-name-per-quantity style (``la_code``, ``imd_decile``);
- converts the big CSVs to parquet (smaller, typed);
- re-keys the Dec-2019 boundaries to LAD21 by dissolving Buckinghamshire (2020) and
  North/West Northamptonshire (2021). Cornwall + Isles of Scilly and Hackney + City of
  London arrive already dissolved (PHE dashboard geography) and stay so: the polygon
  carries both codes in ``la_codes``;
- adds the dated table of national restrictions used to annotate trend plots;
- writes :data:`RECORD` (``build_record.json``): the sha256 and size of every source file
  it read and the sha256, size and rows of every file it wrote, so a test can tell that
  the packaged files are still exactly what the build made, with no source folder at hand.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import polars as pl

HERE = Path(__file__).parent
RECORD = HERE / "build_record.json"
SOURCE_FILES = {
    "las": "ons_lad21_england_lookup.csv",
    "imd": "mhclg_imd2019_lsoa11_lad21_england.csv",
    "population": "ons_population_mid2020_lad21_sex_single_year_of_age.csv",
    "esp": "european_standard_population_2013.csv",
    "curve": "nhstt_england_weekly_people_tested_positive_2020_2021.csv",
    "hexmap": "odileeds_uk-local-authority-districts-2021.hexjson",
    "boundaries": "trafford_ltla_lad19_buc_england_merged.geojson",
}
PACKAGED_FILES = (
    "las.csv",
    "lsoas.parquet",
    "population.parquet",
    "esp2013.csv",
    "england_weekly_pcr.csv",
    "las.hexjson",
    "restrictions.csv",
    "boundaries.parquet",
)

LAD21_MERGERS = {
    "E06000060": ["E07000004", "E07000005", "E07000006", "E07000007"],  # Buckinghamshire
    "E06000061": ["E07000150", "E07000152", "E07000153", "E07000156"],  # North Northants
    "E06000062": ["E07000151", "E07000154", "E07000155"],  # West Northants
}
DASHBOARD_MERGED = {"E06000052": "E06000052,E06000053", "E09000012": "E09000012,E09000001"}

# England-wide restriction milestones (Institute for Government timeline of UK
# coronavirus lockdowns; GOV.UK roadmap). Dates are when rules took legal effect.
RESTRICTIONS = [
    ("2020-03-23", "First national lockdown"),
    ("2020-07-04", "Hospitality reopens"),
    ("2020-09-14", "Rule of six"),
    ("2020-10-14", "Three-tier system"),
    ("2020-11-05", "Second national lockdown"),
    ("2020-12-02", "Tiers return"),
    ("2020-12-20", "Tier 4 in London and South East"),
    ("2021-01-06", "Third national lockdown"),
    ("2021-03-08", "Roadmap step 1 (schools return)"),
    ("2021-04-12", "Roadmap step 2"),
    ("2021-05-17", "Roadmap step 3"),
    ("2021-07-19", "Roadmap step 4"),
]


def build(src: Path) -> None:
    """Write every file of :data:`PACKAGED_FILES` from ``src``, then :data:`RECORD`."""
    path = {key: src / name for key, name in SOURCE_FILES.items()}
    build_las(path["las"])
    build_lsoas(path["imd"])
    build_population(path["population"])
    build_esp(path["esp"])
    build_curve(path["curve"])
    (HERE / "las.hexjson").write_bytes(path["hexmap"].read_bytes())
    pl.DataFrame(RESTRICTIONS, schema=["date", "event"], orient="row").write_csv(
        HERE / "restrictions.csv"
    )
    build_boundaries(path["boundaries"])
    write_record(src)


def build_las(path: Path) -> None:
    las = pl.read_csv(path).rename(
        {
            "lad21_code": "la_code",
            "lad21_name": "la_name",
            "utla21_code": "utla_code",
            "utla21_name": "utla_name",
            "population_mid2020": "population",
        }
    )
    las.sort("la_code").write_csv(HERE / "las.csv")


def build_lsoas(path: Path) -> None:
    imd = pl.read_csv(path)
    renames = {"lad21_code": "la_code"}
    for col in imd.columns:
        if col.startswith("imd19_"):
            renames[col] = "imd_" + col.removeprefix("imd19_").replace("imd_", "", 1).replace(
                "housing_and_access", "housing"
            )
    imd.rename(renames).write_parquet(HERE / "lsoas.parquet", compression="zstd")


def build_population(path: Path) -> None:
    pop = pl.read_csv(path)
    pop.select("area_code", "sex", pl.col("age").cast(pl.Int16), "population").sort(
        "area_code", "sex", "age"
    ).write_parquet(HERE / "population.parquet", compression="zstd")


def build_esp(path: Path) -> None:
    esp = pl.read_csv(path)
    esp.select(
        pl.col("AgeGroup").str.replace(" years", "").str.replace("plus", "+").alias("age_band"),
        pl.col("EuropeanStandardPopulation").alias("esp_population"),
    ).write_csv(HERE / "esp2013.csv")


def build_curve(path: Path) -> None:
    curve = pl.read_csv(path, try_parse_dates=True)
    # NHSTT weeks run Thursday..Wednesday; label each by the Monday of the ISO week
    # holding its mid-point (a Sunday), so it lines up with the pipeline's iso_week.
    curve.select(
        (pl.col("week_mid_date") - pl.duration(days=6)).alias("iso_week"),
        "people_tested",
        "people_positive",
    ).write_csv(HERE / "england_weekly_pcr.csv")


def build_boundaries(path: Path) -> None:
    import geopandas as gpd

    gdf = gpd.read_file(path)[["area_code", "area_name", "geometry"]]
    to_lad21 = {old: new for new, olds in LAD21_MERGERS.items() for old in olds}
    gdf["la_code"] = gdf["area_code"].map(lambda c: to_lad21.get(c, c))
    gdf = gdf.dissolve(by="la_code", as_index=False)[["la_code", "geometry"]]
    gdf["la_codes"] = gdf["la_code"].map(lambda c: DASHBOARD_MERGED.get(c, c))
    gdf = gdf.to_crs(27700)
    gdf["geometry"] = gdf.geometry.simplify(200)  # metres; keeps the file small
    gdf.to_crs(4326).to_parquet(HERE / "boundaries.parquet", compression="zstd")


def file_facts(path: Path) -> dict:
    """sha256 and size of a file, and its rows when it is a table (hexes, features)."""
    data = path.read_bytes()
    facts = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    if path.suffix == ".csv":
        facts["rows"] = pl.scan_csv(path).select(pl.len()).collect().item()
    elif path.suffix == ".parquet":
        facts["rows"] = pl.scan_parquet(path).select(pl.len()).collect().item()
    elif path.suffix == ".hexjson":
        facts["rows"] = len(json.loads(data)["hexes"])
    elif path.suffix == ".geojson":
        facts["rows"] = len(json.loads(data)["features"])
    return facts


def write_record(src: Path) -> None:
    """:data:`RECORD`: what the build read (sources) and what it wrote (packaged)."""
    record = {
        "sources": {name: file_facts(src / name) for name in sorted(SOURCE_FILES.values())},
        "packaged": {name: file_facts(HERE / name) for name in sorted(PACKAGED_FILES)},
    }
    RECORD.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m lds_dask.contract.data.build_refdata SOURCE_DIR")
    build(Path(sys.argv[1]))
    print(RECORD.read_text())
