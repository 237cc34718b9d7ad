"""Real reference data shipped inside the package (see ``lds_dask/contract/data/SOURCES.md``).

Every accessor returns a typed polars frame (geopandas for boundaries) and is cached,
so callers may use them freely. All facts are Crown copyright under the Open Government
Licence v3.0; anything that shows them carries :data:`ATTRIBUTION`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import polars as pl

DATA_DIR = Path(__file__).parent / "data"
ENGLAND_CODE = "E92000001"
ENGLAND_NAME = "England"
ATTRIBUTION = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Source: Office for National Statistics; Ministry of Housing, Communities and Local "
    "Government (English Indices of Deprivation 2019); DHSC NHS Test and Trace statistics. "
    "Hex cartogram: ODI Leeds / Open Innovations (MIT)."
)


@cache
def las() -> pl.DataFrame:
    """The 309 English LAD21 lower-tier LAs with UTLA, region and mid-2020 population."""
    return pl.read_csv(DATA_DIR / "las.csv", schema_overrides={"population": pl.Int64})


@cache
def la_codes() -> frozenset[str]:
    """The set of the 309 valid LAD21 codes."""
    return frozenset(las()["la_code"].to_list())


@cache
def regions() -> pl.DataFrame:
    """The 9 English regions with their population."""
    return (
        las()
        .group_by("region_code", "region_name")
        .agg(pl.col("population").sum())
        .sort("region_code")
    )


@cache
def utlas() -> pl.DataFrame:
    """Upper-tier LAs (counties E10 and the unitary/metropolitan/London LAs themselves)."""
    return (
        las()
        .group_by("utla_code", "utla_name", "region_code")
        .agg(pl.col("population").sum())
        .sort("utla_code")
    )


@cache
def lsoas() -> pl.DataFrame:
    """The 32,844 LSOA11s with their LAD21 and IMD 2019 deciles and ranks (1 = most deprived)."""
    return pl.read_parquet(DATA_DIR / "lsoas.parquet")


@cache
def population() -> pl.DataFrame:
    """Mid-2020 population: area (LA, region, England) x sex (F/M) x age 0..90 (90 = 90+)."""
    return pl.read_parquet(DATA_DIR / "population.parquet")


@cache
def esp2013() -> pl.DataFrame:
    """European Standard Population 2013 by 5-year band (0-4 .. 90+), summing to 100,000."""
    return pl.read_csv(DATA_DIR / "esp2013.csv")


@cache
def england_weekly_pcr() -> pl.DataFrame:
    """England PCR (pillars 1+2) people tested and positive per ISO week (Monday), 52 weeks."""
    return pl.read_csv(DATA_DIR / "england_weekly_pcr.csv", try_parse_dates=True)


@cache
def restrictions() -> pl.DataFrame:
    """Dated England-wide restriction milestones, for annotating trends."""
    return pl.read_csv(DATA_DIR / "restrictions.csv", try_parse_dates=True)


@cache
def hexmap() -> pl.DataFrame:
    """The ODI Leeds LAD21 hex cartogram (odd-r layout) for the 309 English LAs: q, r."""
    hexes = json.loads((DATA_DIR / "las.hexjson").read_text())["hexes"]
    rows = [
        (code, h["n"], h["q"], h["r"], h["region"])
        for code, h in hexes.items()
        if code in la_codes()
    ]
    return pl.DataFrame(
        rows, schema=["la_code", "la_name", "q", "r", "region_code"], orient="row"
    ).sort("la_code")


def boundaries():
    """Generalised LA boundaries (geopandas, WGS84) re-keyed to LAD21: 307 polygons.

    Cornwall + Isles of Scilly and Hackney + City of London share one polygon each
    (the PHE dashboard geography); ``la_codes`` lists every LA a polygon covers.
    """
    import geopandas as gpd

    return gpd.read_parquet(DATA_DIR / "boundaries.parquet")


def sources_text() -> str:
    """Provenance of every packaged file (the SOURCES.md shipped with the data)."""
    return (DATA_DIR / "SOURCES.md").read_text()
