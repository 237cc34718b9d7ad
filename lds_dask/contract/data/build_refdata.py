"""Rebuild the packaged reference data from the published files in ../shared/refdata.

Run once by a maintainer (``python -m lds_dask.contract.data.build_refdata SHARED_REFDATA``);
the outputs are committed, so users and CI never need the source folder.

What it does, and why:
- renames columns to the project's one-name-per-quantity style (``la_code``, ``imd_decile``);
- converts the big CSVs to parquet (smaller, typed);
- re-keys the Dec-2019 boundaries to LAD21 by dissolving Buckinghamshire (2020) and
  North/West Northamptonshire (2021). Cornwall + Isles of Scilly and Hackney + City of
  London arrive already dissolved (PHE dashboard geography) and stay so: the polygon
  carries both codes in ``la_codes``;
- adds the dated table of national restrictions used to annotate trend plots.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import polars as pl

HERE = Path(__file__).parent

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
    shutil.copy(src / "SOURCES.md", HERE / "SOURCES.md")
    las = pl.read_csv(src / "ons_lad21_england_lookup.csv").rename(
        {
            "lad21_code": "la_code",
            "lad21_name": "la_name",
            "utla21_code": "utla_code",
            "utla21_name": "utla_name",
            "population_mid2020": "population",
        }
    )
    las.sort("la_code").write_csv(HERE / "las.csv")

    imd = pl.read_csv(src / "mhclg_imd2019_lsoa11_lad21_england.csv")
    renames = {"lad21_code": "la_code"}
    for col in imd.columns:
        if col.startswith("imd19_"):
            renames[col] = "imd_" + col.removeprefix("imd19_").replace("imd_", "", 1).replace(
                "housing_and_access", "housing"
            )
    lsoas = imd.rename(renames)
    lsoas.write_parquet(HERE / "lsoas.parquet", compression="zstd")

    pop = pl.read_csv(src / "ons_population_mid2020_lad21_sex_single_year_of_age.csv")
    pop.select("area_code", "sex", pl.col("age").cast(pl.Int16), "population").sort(
        "area_code", "sex", "age"
    ).write_parquet(HERE / "population.parquet", compression="zstd")

    esp = pl.read_csv(src / "european_standard_population_2013.csv")
    esp.select(
        pl.col("AgeGroup").str.replace(" years", "").str.replace("plus", "+").alias("age_band"),
        pl.col("EuropeanStandardPopulation").alias("esp_population"),
    ).write_csv(HERE / "esp2013.csv")

    curve = pl.read_csv(
        src / "nhstt_england_weekly_people_tested_positive_2020_2021.csv", try_parse_dates=True
    )
    # NHSTT weeks run Thursday..Wednesday; label each by the Monday of the ISO week
    # holding its mid-point (a Sunday), so it lines up with the pipeline's iso_week.
    curve.select(
        (pl.col("week_mid_date") - pl.duration(days=6)).alias("iso_week"),
        "people_tested",
        "people_positive",
    ).write_csv(HERE / "england_weekly_pcr.csv")

    shutil.copy(src / "odileeds_uk-local-authority-districts-2021.hexjson", HERE / "las.hexjson")
    pl.DataFrame(RESTRICTIONS, schema=["date", "event"], orient="row").write_csv(
        HERE / "restrictions.csv"
    )
    build_boundaries(src / "trafford_ltla_lad19_buc_england_merged.geojson")


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


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[3] / "shared" / "refdata")
    print(json.dumps(sorted(p.name for p in HERE.iterdir())))
