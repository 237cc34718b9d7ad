"""Link: the derived and covariate columns every stored row gains (pure frame -> frame).

IMD 2019 deciles come from the packaged LSOA table; AHAH deciles from a CDRC AHAH v3 file
(real, or the generator's synthetic one). Population denominators come from refdata.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lds_dask.contract import bands, refdata
from lds_dask.contract.io import read_table_file
from lds_dask.contract.schemas import SchemaError, load_schema, refdata_codes
from lds_dask.contract.validation import validate_frame

IMD_DECILES = [
    "imd_decile",
    "imd_income_decile",
    "imd_employment_decile",
    "imd_education_decile",
    "imd_health_decile",
    "imd_crime_decile",
    "imd_housing_decile",
    "imd_environment_decile",
]


def build_covariates(ahah: pl.DataFrame | None) -> pl.DataFrame:
    """LSOA11 -> IMD decile columns (refdata) and AHAH decile (null without an AHAH file)."""
    cov = refdata.lsoas().select("lsoa11_code", *[pl.col(c).cast(pl.Int8) for c in IMD_DECILES])
    if ahah is None:
        return cov.with_columns(ahah_decile=pl.lit(None, pl.Int8))
    return cov.join(ahah_deciles(ahah), on="lsoa11_code", how="left")


def ahah_deciles(ahah: pl.DataFrame) -> pl.DataFrame:
    """Decile of ``ah3ahah_rn`` where 1 = least healthy 10% (highest ranks), like IMD."""
    n = ahah.height
    decile = 10 - ((pl.col("ah3ahah_rn").cast(pl.Int64) - 1) * 10 // n)
    return ahah.select(
        pl.col("lsoa11").alias("lsoa11_code"), decile.cast(pl.Int8).alias("ahah_decile")
    )


def read_ahah(path: Path) -> pl.DataFrame:
    """Read and validate an AHAH v3 file; any invalid row is a user error (ranks must be whole)."""
    schema = load_schema("ahah")
    result = validate_frame(read_table_file(path, schema), schema, source=str(path))
    if result.rejected.height:
        rule, n = max(result.rule_counts.items(), key=lambda kv: kv[1])
        raise SchemaError(
            f"{path}: {result.rejected.height:,} AHAH row(s) invalid, e.g. {n:,} failing {rule}"
        )
    return result.valid


def covariates_by_code(covariates: pl.DataFrame) -> pl.DataFrame:
    """The covariate columns with one row per code of the LSOA code table, in code order, so
    a record's deciles are a gather by its LSOA code (null for an LSOA without covariates)."""
    codes = pl.DataFrame({"lsoa11_code": refdata_codes("lsoa").values})
    table = codes.join(covariates, on="lsoa11_code", how="left", maintain_order="left")
    return table.drop("lsoa11_code")


def derive_columns(
    coded: pl.DataFrame, date_col: str, covariates: pl.DataFrame | None
) -> pl.DataFrame:
    """Add iso_week, the ESP and LDS age band codes and, given covariates (one row per LSOA
    code, :func:`covariates_by_code`), the LSOA's deciles and IMD/AHAH quintiles.

    ``coded`` holds validated rows with categorical fields as codes. The band codes index
    :data:`~lds_dask.contract.bands.ESP_LABELS` and :data:`~lds_dask.contract.bands.LDS_LABELS`; an unknown
    age has band ``unknown``. An unknown (null) LSOA keeps its LA and gets null deciles.
    Survey rows carry no LSOA, so they are derived without covariates.
    """
    age = pl.col("age").fill_null(bands.MAX_AGE + 1)
    out = coded.with_columns(
        iso_week=bands.iso_week(date_col),
        age_band_esp=pl.lit(bands.band_codes("esp")).gather(age),
        age_band=pl.lit(bands.band_codes("lds")).gather(age),
    )
    if covariates is None:
        return out
    lsoa = pl.col("lsoa11_code")
    out = out.with_columns(pl.lit(covariates[c]).gather(lsoa).alias(c) for c in covariates.columns)
    return out.with_columns(
        imd_quintile=bands.quintile_from_decile("imd_decile"),
        ahah_quintile=bands.quintile_from_decile("ahah_decile"),
    )


def population_frame() -> pl.DataFrame:
    """Denominators: area (LA, region, England) x sex x ESP band x LDS band -> population."""
    pop = refdata.population().with_columns(
        age_band_esp=bands.esp_band("age"), age_band=bands.lds_band("age")
    )
    keys = ["area_code", "sex", "age_band_esp", "age_band"]
    return pop.group_by(keys).agg(pl.col("population").sum()).sort(keys)
