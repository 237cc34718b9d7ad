"""Labels checked before export: every label that leaves is declared, never data.

Disclosure control judges cells by their counts; it cannot see what a label says. A cube
whose category labels were person ids (every cell 12, so nothing is suppressed) would pass it
and publish the ids. So before anything is exported, every label of every exported cell is
checked against a closed vocabulary:

* a category dim (``age_band``, ``sex``, ...) must be declared in
  :data:`lds_dask.cube.arrays.CATEGORIES` and hold only its declared categories;
* ``area`` codes must be reference areas (the 309 LAs, the county UTLAs, the regions,
  England; :func:`lds_dask.cube.arrays.area_table`), with their reference ``area_name`` and
  ``area_type`` where those coordinates are present;
* ``lsoa`` codes must be reference LSOA11s (with their reference names, if present);
* ``week`` must hold dates, and ``period`` the cube's declared period names (its ``config``
  attribute, else the default :class:`lds_dask.cube.build.CubeConfig`).

A failure raises :class:`DisclosureError` naming the node, the dim and how many labels are
bad; never a label.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import xarray as xr

from lds_dask.contract import refdata
from lds_dask.cube.arrays import CATEGORIES, area_table
from lds_dask.sdc.margins import AREA_DIM, LSOA_DIM, DisclosureError, as_text

PERIOD_DIM, WEEK_DIM = "period", "week"


def check_labels(tree: xr.DataTree) -> None:
    """Raise :class:`DisclosureError` unless every exported label of ``tree`` is declared."""
    periods = declared_periods(tree)
    for node in tree.subtree:
        if node.path == "/":
            continue  # the root holds no cells: export writes no table for it
        ds = node.to_dataset(inherit=True)
        name = node.path.strip("/")
        for dim in sorted({d for var in ds.data_vars.values() for d in var.dims}):
            _check_dim(name, ds, dim, periods)


def _check_dim(node: str, ds: xr.Dataset, dim: str, periods: frozenset[str]) -> None:
    if dim == WEEK_DIM:
        if not np.issubdtype(ds[dim].dtype, np.datetime64):
            _refuse(node, dim, ds.sizes[dim], ds.sizes[dim], "are not dates")
        return
    if dim == AREA_DIM:
        _check_places(node, ds, dim, reference_areas(), ("area_name", "area_type"))
        return
    if dim == LSOA_DIM:
        _check_places(node, ds, dim, reference_lsoas(), ("lsoa11_name",))
        return
    if dim == PERIOD_DIM:
        allowed = periods
    elif dim in CATEGORIES:
        allowed = frozenset(CATEGORIES[dim])
    else:
        raise DisclosureError(f"{node}: dim {dim} is not a declared category; nothing exported")
    labels = as_text(ds[dim].values)
    _count_bad(node, dim, ~np.isin(labels, list(allowed)))


def _check_places(
    node: str, ds: xr.Dataset, dim: str, reference: dict[str, tuple], coords: tuple
) -> None:
    """Codes along ``dim`` are reference codes, and each named coordinate on ``dim`` holds
    the reference value of its code (names and kinds are exported beside the code)."""
    codes = as_text(ds[dim].values)
    _count_bad(node, dim, ~np.isin(codes, list(reference)))
    for i, coord in enumerate(coords):
        if coord in ds.coords and ds[coord].dims == (dim,):
            expected = np.array([reference[c][i] for c in codes.tolist()], dtype=str)
            bad = as_text(ds[coord].values) != expected
            _count_bad(node, coord, bad, f"differ from the reference {coord} of their {dim}")


def _count_bad(node: str, dim: str, bad: np.ndarray, why: str = "") -> None:
    if bad.any():
        why = why or "are not declared categories or reference codes"
        _refuse(node, dim, int(bad.sum()), bad.size, why)


def _refuse(node: str, dim: str, n_bad: int, n: int, why: str) -> None:
    raise DisclosureError(f"{node}: {n_bad} of {n} {dim} labels {why}; nothing exported")


def declared_periods(tree: xr.DataTree) -> frozenset[str]:
    """The period names the cube was built with (its root ``config``), else the defaults."""
    from lds_dask.cube.build import CubeConfig

    try:
        names = json.loads(tree.attrs["config"])["period_names"]
    except (KeyError, TypeError, ValueError):
        names = CubeConfig().period_names
    return frozenset(str(n) for n in names)


@cache
def reference_areas() -> dict[str, tuple[str, str]]:
    """Area code -> (area_name, area_type) of every reference area of the cube contract."""
    table = area_table()
    return {a: (n, t) for a, n, t in table.select("area", "area_name", "area_type").iter_rows()}


@cache
def reference_lsoas() -> dict[str, tuple[str]]:
    """LSOA11 code -> (lsoa11_name,)."""
    return {c: (n,) for c, n in refdata.lsoas().select("lsoa11_code", "lsoa11_name").iter_rows()}
