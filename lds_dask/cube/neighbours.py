"""Statistical nearest neighbours: for each LTLA, the LTLAs most like it.

Like CIPFA's nearest-neighbour model, similarity is Euclidean distance between
standardised (z-scored) covariates, all from the packaged reference data:

* the mean LSOA rank of each IMD 2019 domain (7 domains plus the overall IMD);
* log population;
* age structure: share aged 0-15 and share aged 65 and over;
* log population density, when geopandas can read the packaged boundaries
  (LAs that share a dashboard polygon share its density).

Each covariate weighs the same. Ties break by LA code, so the result is deterministic.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from lds_dask.contract import refdata

IMD_RANKS = (
    "imd_rank",
    "imd_income_rank",
    "imd_employment_rank",
    "imd_education_rank",
    "imd_health_rank",
    "imd_crime_rank",
    "imd_housing_rank",
    "imd_environment_rank",
)


def la_covariates() -> pl.DataFrame:
    """One row per LTLA (sorted by code) with the neighbour covariates."""
    imd = refdata.lsoas().group_by("la_code").agg(pl.col(IMD_RANKS).mean())
    pop = refdata.population().filter(pl.col("area_code").is_in(sorted(refdata.la_codes())))
    ages = pop.group_by(la_code="area_code").agg(
        share_0_15=pl.col("population").filter(pl.col("age") <= 15).sum()
        / pl.col("population").sum(),
        share_65_plus=pl.col("population").filter(pl.col("age") >= 65).sum()
        / pl.col("population").sum(),
    )
    las = refdata.las().select(
        "la_code", log_population=pl.col("population").cast(pl.Float64).log()
    )
    out = las.join(imd, on="la_code", how="left").join(ages, on="la_code", how="left")
    density = la_log_density()
    if density is not None:
        out = out.join(density, on="la_code", how="left")
    return out.sort("la_code")


def la_log_density() -> pl.DataFrame | None:
    """log(people per km^2) per LTLA from the packaged boundaries, or None without geopandas."""
    try:
        shapes = refdata.boundaries()
    except ImportError:
        return None
    area_km2 = shapes.to_crs(27700).area.to_numpy() / 1e6
    rows = []
    pops = dict(refdata.las().select("la_code", "population").iter_rows())
    for codes, km2 in zip(shapes["la_codes"], area_km2, strict=True):
        codes = codes.split(",") if isinstance(codes, str) else list(codes)
        total = sum(pops.get(c, 0) for c in codes)
        rows += [(c, float(np.log(total / km2))) for c in codes if c in pops]
    return pl.DataFrame(rows, schema=["la_code", "log_density"], orient="row").unique("la_code")


@cache
def nearest_neighbours(n_neighbours: int = 15) -> tuple[tuple[str, ...], np.ndarray]:
    """(LTLA codes, neighbour codes array (n_la, n_neighbours)), nearest first."""
    cov = la_covariates()
    codes = tuple(cov["la_code"])
    x = cov.drop("la_code").to_numpy().astype(float)
    x = np.where(np.isnan(x), np.nanmean(x, axis=0), x)  # a missing covariate sits at the mean
    sd = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    dist = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    order = np.argsort(dist, axis=1, kind="stable")[:, :n_neighbours]
    return codes, np.array(codes, dtype=object)[order]


def neighbours_array(areas: list[str], n_neighbours: int = 15) -> np.ndarray:
    """(area, rank) object array of neighbour codes; empty strings for non-LTLA areas."""
    codes, table = nearest_neighbours(n_neighbours)
    row = {c: i for i, c in enumerate(codes)}
    out = np.full((len(areas), n_neighbours), "", dtype=object)
    for i, area in enumerate(areas):
        if area in row:
            out[i] = table[row[area]]
    return out
