"""From the kernel's long LA frames to dense area x week x category arrays.

Areas follow the contract order: the 309 LTLAs by code, the county UTLAs (E10), the 9
regions, England. Every aggregate is the sum of its LAs' partials: counts stay int64 and
exact (people are additive because each person-week has one owner), and denominators
are summed the same way.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import polars as pl
import xarray as xr

from lds_dask.contract import refdata
from lds_dask.contract.bands import ESP_BANDS, ETHNICITIES, LDS_BANDS, SEXES, UNKNOWN
from lds_dask.cube.counts import BREAKDOWNS

DECILES = [str(d) for d in range(1, 11)]
QUINTILES = [str(q) for q in range(1, 6)]
CATEGORIES: dict[str, list[str]] = {
    "age_band": [*LDS_BANDS, UNKNOWN],
    "sex": list(SEXES),
    "ethnicity": list(ETHNICITIES),
    "imd_decile": [*DECILES, UNKNOWN],
    "imd_quintile": [*QUINTILES, UNKNOWN],
    "ahah_quintile": [*QUINTILES, UNKNOWN],
    "age_band_esp": list(ESP_BANDS),  # unknown ages cannot be standardised
}
NODE_DIMS = BREAKDOWNS  # node -> its category dims (one table, in cube_counts)


@cache
def area_table() -> pl.DataFrame:
    """area, area_name, area_type, region_code, utla_code in contract order."""
    las = refdata.las()
    ltla = las.select(
        area="la_code",
        area_name="la_name",
        area_type=pl.lit("ltla"),
        region_code="region_code",
        utla_code="utla_code",
    )
    county = (
        las.filter(pl.col("utla_code").str.starts_with("E10"))
        .unique("utla_code")
        .sort("utla_code")
        .select(
            area="utla_code",
            area_name="utla_name",
            area_type=pl.lit("utla"),
            region_code="region_code",
            utla_code="utla_code",
        )
    )
    region = refdata.regions().select(
        area="region_code",
        area_name="region_name",
        area_type=pl.lit("region"),
        region_code="region_code",
        utla_code=pl.lit(""),
    )
    england = pl.DataFrame(
        {
            "area": [refdata.ENGLAND_CODE],
            "area_name": [refdata.ENGLAND_NAME],
            "area_type": ["country"],
            "region_code": [""],
            "utla_code": [""],
        }
    )
    return pl.concat([ltla.sort("area"), county, region, england])


@cache
def la_order() -> tuple[str, ...]:
    """The 309 LTLA codes in area order (the first rows of :func:`area_table`)."""
    return tuple(area_table().filter(pl.col("area_type") == "ltla")["area"])


@cache
def aggregate_members() -> tuple[np.ndarray, ...]:
    """For each non-LTLA area (in area order), the rows of the LAs that make it up."""
    areas = area_table()
    n_la = len(la_order())
    row = {code: i for i, code in enumerate(areas["area"])}
    members: list[list[int]] = [[] for _ in range(areas.height - n_la)]
    for i, la in enumerate(refdata.las().sort("la_code").iter_rows(named=True)):
        targets = [la["utla_code"]] if la["utla_code"].startswith("E10") else []
        for t in [*targets, la["region_code"], refdata.ENGLAND_CODE]:
            members[row[t] - n_la].append(i)
    return tuple(np.array(m, dtype=np.int64) for m in members)


def sum_to_areas(la_array: np.ndarray) -> np.ndarray:
    """LA array (309, ...) -> all-area array (n_areas, ...) with aggregates as LA sums."""
    sums = [la_array[rows].sum(axis=0) for rows in aggregate_members()]
    return np.concatenate([la_array, np.stack(sums).astype(la_array.dtype, copy=False)])


def week_range(first: dt.date, last: dt.date) -> np.ndarray:
    """Every ISO-week Monday from ``first`` to ``last`` as datetime64[ns]."""
    n = (last - first).days // 7 + 1
    return (np.datetime64(first, "D") + 7 * np.arange(n)).astype("datetime64[ns]")


def dense_counts(
    frame: pl.DataFrame,
    weeks: np.ndarray,
    dims: tuple[str, ...],
    columns: tuple[str, ...],
    dtype=np.int64,
) -> dict[str, np.ndarray]:
    """Long LA x week x category values -> dense arrays (309, week, *dims), zero-filled.

    Keys must be unique (each LA is counted by one task, so they are)."""
    shape = (len(la_order()), len(weeks), *[len(CATEGORIES[d]) for d in dims])
    for i, d in enumerate(dims):  # e.g. unknown ages have no ESP band
        frame = frame.filter(pl.col(f"cat_{i + 1}").is_in(CATEGORIES[d]))
    index = _flat_index(frame, weeks, dims, shape)
    out = {}
    for col in columns:
        arr = np.zeros(int(np.prod(shape)), dtype=dtype)
        arr[index] = frame[col].to_numpy()
        out[col] = arr.reshape(shape)
    return out


def _flat_index(
    frame: pl.DataFrame, weeks: np.ndarray, dims: tuple[str, ...], shape: tuple[int, ...]
) -> np.ndarray:
    la = {c: i for i, c in enumerate(la_order())}
    week = {w: i for i, w in enumerate(weeks.astype("datetime64[D]").astype(dt.date).tolist())}
    parts = [
        frame["la_code"].replace_strict(la, return_dtype=pl.Int64).to_numpy(),
        frame["iso_week"].replace_strict(week, return_dtype=pl.Int64).to_numpy(),
    ]
    for i, d in enumerate(dims):
        cats = {c: j for j, c in enumerate(CATEGORIES[d])}
        parts.append(frame[f"cat_{i + 1}"].replace_strict(cats, return_dtype=pl.Int64).to_numpy())
    return np.ravel_multi_index(tuple(parts), shape)


def population_array(pop: pl.DataFrame, dims: tuple[str, ...]) -> np.ndarray:
    """Denominators (309, *dims) float64; NaN for categories without one (unknown age,
    sex U, ethnicity, IMD, AHAH)."""
    shape = (len(la_order()), *[len(CATEGORIES[d]) for d in dims])
    known = all(d in ("sex", "age_band", "age_band_esp") for d in dims)
    out = np.full(shape, np.nan if dims else 0.0)
    if not known:
        return out
    sums = pop.group_by("la_code", *dims).agg(pl.col("population").sum())
    la = {c: i for i, c in enumerate(la_order())}
    idx = [sums["la_code"].replace_strict(la, return_dtype=pl.Int64).to_numpy()]
    idx += [
        sums[d]
        .replace_strict({c: j for j, c in enumerate(CATEGORIES[d])}, return_dtype=pl.Int64)
        .to_numpy()
        for d in dims
    ]
    out[tuple(idx)] = sums["population"].to_numpy()
    return out


def area_coords(weeks: np.ndarray) -> dict:
    """Coordinates shared by every area node (strings as object arrays for zarr)."""
    areas = area_table()
    coords = {
        c: ("area", np.array(areas[c].to_list(), dtype=object))
        for c in ("area_name", "area_type", "region_code", "utla_code")
    }
    coords["area"] = np.array(areas["area"].to_list(), dtype=object)
    coords["week"] = weeks
    return coords


def node_dataset(
    arrays: dict[str, np.ndarray], dims: tuple[str, ...], weeks: np.ndarray
) -> xr.Dataset:
    """A node's Dataset from all-area arrays shaped (area, week, *dims)."""
    coords = area_coords(weeks)
    for d in dims:
        coords[d] = np.array(CATEGORIES[d], dtype=object)
    return xr.Dataset({k: (("area", "week", *dims), v) for k, v in arrays.items()}, coords=coords)
