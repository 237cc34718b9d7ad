"""Assembling the cube's nodes from the gathered kernel frames.

Input: the concatenated small frames of every bundle (``cube_counts``). Output: one
``xarray.Dataset`` per node (``total``, the breakdowns, ``inequality``, ``lsoa``) with
every measure of docs/architecture.md. Runs on the client; the arrays are small
(areas x weeks x categories).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import xarray as xr

from lds_dask.contract import refdata
from lds_dask.cube.arrays import (
    NODE_DIMS,
    dense_counts,
    la_order,
    node_dataset,
    population_array,
    sum_to_areas,
    week_range,
)
from lds_dask.cube.counts import COUNT_COLUMNS, LSOA_COUNT_COLUMNS
from lds_dask.cube.measures import (
    add_dsr,
    add_positivity,
    add_rate_measures,
    add_significance,
    add_survey,
    inequality_dataset,
    set_measure_attrs,
)

SURVEY_SUMS = ("survey_responses", "weight_sum", "weighted_positive", "weight_sq_sum")
AREA_NODES = tuple(n for n in NODE_DIMS if n != "age_band_esp")


def cube_weeks(counts: pl.DataFrame, survey: pl.DataFrame | None) -> np.ndarray:
    """Every ISO week from the first to the last week with a record or survey swab."""
    weeks = [counts["iso_week"]] + ([survey["iso_week"]] if survey is not None else [])
    allw = pl.concat(weeks)
    return week_range(allw.min(), allw.max())


def build_area_nodes(
    counts: pl.DataFrame, survey: pl.DataFrame | None, pop: pl.DataFrame
) -> dict[str, xr.Dataset]:
    """The area x week nodes (total, breakdowns, inequality) with all their measures."""
    weeks = cube_weeks(counts, survey)
    nodes = {}
    for name in AREA_NODES:
        dims = NODE_DIMS[name]
        arrays = dense_counts(
            counts.filter(pl.col("breakdown") == name), weeks, dims, COUNT_COLUMNS
        )
        ds = node_dataset({k: sum_to_areas(v) for k, v in arrays.items()}, dims, weeks)
        popn = xr.DataArray(sum_to_areas(population_array(pop, dims)), dims=("area", *dims))
        nodes[name] = add_rate_measures(ds, popn)
    esp = dense_counts(
        counts.filter(pl.col("breakdown") == "age_band_esp"),
        weeks,
        ("age_band_esp",),
        ("people_positive",),
    )["people_positive"]
    esp_pop = sum_to_areas(population_array(pop, ("age_band_esp",)))
    total = add_dsr(nodes["total"], sum_to_areas(esp), esp_pop)
    total = add_significance(total)
    if survey is not None:
        total = add_survey(total, survey_arrays(survey, weeks))
    nodes["total"] = total
    total_pop = sum_to_areas(population_array(pop, ()))
    nodes["inequality"] = inequality_dataset(nodes["imd_decile"], lsoa_decile_share(), total_pop)
    return {k: set_measure_attrs(v) for k, v in nodes.items()}


def survey_arrays(survey: pl.DataFrame, weeks: np.ndarray) -> dict[str, np.ndarray]:
    """Dense all-area survey sums (area, week); pooled sums for every aggregate."""
    dense = dense_counts(survey, weeks, (), SURVEY_SUMS[1:], dtype=np.float64)
    dense |= dense_counts(survey, weeks, (), SURVEY_SUMS[:1])
    return {k: sum_to_areas(v) for k, v in dense.items()}


def lsoa_decile_share() -> np.ndarray:
    """(area, decile 1..10): each area's share of its LSOAs in each IMD decile."""
    la_index = {c: i for i, c in enumerate(la_order())}
    counts = np.zeros((len(la_index), 10))
    per = refdata.lsoas().group_by("la_code", "imd_decile").len()
    for la, decile, n in per.iter_rows():
        counts[la_index[la], int(decile) - 1] = n
    counts = sum_to_areas(counts)
    return counts / counts.sum(axis=1, keepdims=True)


def build_lsoa_node(
    lsoa: pl.DataFrame, period_names: tuple[str, ...], ahah: pl.DataFrame | None
) -> xr.Dataset:
    """LSOA x period counts and positivity, with the LSOA's LA, IMD and AHAH deciles."""
    ref = refdata.lsoas().sort("lsoa11_code").select("lsoa11_code", "la_code", "imd_decile")
    ahah = ahah if ahah is not None else lsoa.drop_nulls("ahah_decile")
    ref = ref.join(_ahah_by_lsoa(ahah), on="lsoa11_code", how="left", maintain_order="left")
    row = {c: i for i, c in enumerate(ref["lsoa11_code"])}
    period = {p: j for j, p in enumerate(period_names)}
    known = lsoa.filter(pl.col("lsoa11_code").is_in(list(row)))
    shape = (len(row), len(period_names))
    idx = (
        known["lsoa11_code"].replace_strict(row, return_dtype=pl.Int64).to_numpy(),
        known["period"].replace_strict(period, return_dtype=pl.Int64).to_numpy(),
    )
    data = {}
    for col in LSOA_COUNT_COLUMNS:
        arr = np.zeros(shape, dtype=np.int64)
        arr[idx] = known[col].to_numpy()
        data[col] = (("lsoa", "period"), arr)
    coords = {
        "lsoa": _obj(ref["lsoa11_code"]),
        "period": np.array(period_names, dtype=object),
        "la_code": ("lsoa", _obj(ref["la_code"])),
        "imd_decile": ("lsoa", _obj(_decile_text(ref["imd_decile"]))),
        "ahah_decile": ("lsoa", _obj(_decile_text(ref["ahah_decile"]))),
    }
    return set_measure_attrs(add_positivity(xr.Dataset(data, coords=coords)))


def _ahah_by_lsoa(ahah: pl.DataFrame) -> pl.DataFrame:
    return ahah.select("lsoa11_code", pl.col("ahah_decile").cast(pl.Int8)).unique("lsoa11_code")


def _decile_text(s: pl.Series) -> pl.Series:
    return s.cast(pl.String).fill_null("unknown")


def _obj(s: pl.Series) -> np.ndarray:
    return np.array(s.to_list(), dtype=object)
