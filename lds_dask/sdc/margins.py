"""Secondary suppression: the margins of a cube node and the differencing rule on them.

A margin is a total and its parts (total = sum of parts). One suppressed cell in a margin
is recovered by subtraction, so wherever a margin holds exactly one, the smallest published
part is suppressed too, repeated to a fixed point (see :mod:`lds_dask.sdc.rules`, rule 3).
Margins: the categories of a breakdown against the area's total; the LTLAs of a county,
region or England and the upper tiers of a region or England; the LSOAs of an LA.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from lds_dask.runtime.errors import DisclosureRefusedError

STATUS_OK, STATUS_PRIMARY, STATUS_SECONDARY, STATUS_ROUNDED = 0, 1, 2, 3
STATUS_SUFFIX = "_status"
AREA_DIM, LSOA_DIM = "area", "lsoa"
LSOA_GROUP_COORDS = ("imd_decile", "ahah_decile")


class DisclosureError(DisclosureRefusedError, ValueError):
    """A node cannot be made safe, or a safe view fails its own check."""


def as_text(values) -> np.ndarray:
    """Labels as a plain numpy unicode array (zarr returns StringDType, pandas objects)."""
    return np.array(np.asarray(values).tolist(), dtype=str)


def is_suppressed(status) -> np.ndarray:
    """True where a status code means suppressed (primary or secondary)."""
    status = np.asarray(status)
    return (status == STATUS_PRIMARY) | (status == STATUS_SECONDARY)


@dataclasses.dataclass(frozen=True, eq=False)
class MarginFamily:
    """Disjoint margins along one dim of a node, laid out for whole-array passes: the
    member indices ``order`` run margin by margin (margin ``k`` starts at ``starts[k]``;
    ``seg`` is each member's margin), ``parents[k]`` is the index on the same dim holding
    margin ``k``'s total, or -1 when the total is held elsewhere (then ``external`` is its
    suppressed-mask over the other dims, or None: taken as published)."""

    dim: str
    order: np.ndarray
    starts: np.ndarray
    seg: np.ndarray
    parents: np.ndarray
    external: np.ndarray | None = None

    @classmethod
    def from_groups(cls, dim, group, parent, external=None) -> MarginFamily:
        """From ``group[i]`` (the margin of index i, -1: none) and ``parent[g]``."""
        members = np.flatnonzero(group >= 0)
        order = members[np.argsort(group[members], kind="stable")]
        gid = group[order]
        starts = np.flatnonzero(np.concatenate([[True], gid[1:] != gid[:-1]]))
        seg = np.repeat(np.arange(starts.size), np.diff(np.append(starts, order.size)))
        return cls(dim, order, starts, seg, np.asarray(parent)[gid[starts]], external)


def suppress_secondary(node: xr.Dataset, measure: str, status: np.ndarray, families) -> None:
    """Suppress complementary cells in place until every margin has 0 or >= 2 suppressed.

    Each pass treats all margins of one family at once (whole-array numpy); passes repeat
    until nothing changes."""
    da = node[measure]
    values = da.values.astype(np.float64)[..., np.newaxis]  # trailing axis: 1-D nodes work too
    hidden = is_suppressed(status)[..., np.newaxis]
    plans = [(da.dims.index(f.dim), f) for f in families if f.dim in da.dims and f.order.size]
    pinned = _pinned_cells(hidden.shape, plans)
    changed = True
    while changed:
        changed = False
        for axis, family in plans:
            changed |= _enforce_family(values, hidden, pinned, axis, family, measure)
    status[hidden[..., 0] & (status == STATUS_OK)] = STATUS_SECONDARY


def _pinned_cells(shape, plans) -> np.ndarray:
    """Cells that are the only part of a margin whose total is published elsewhere: they
    equal that total, so suppressing one as a complement would protect nothing."""
    pinned = np.zeros(shape, bool)
    for axis, f in plans:
        if f.order.size == 1 and f.parents[0] < 0:
            shown = True if f.external is None else ~np.expand_dims(f.external, axis)
            pinned |= np.broadcast_to(shown, shape)
    return pinned


def _enforce_family(values, hidden, pinned, axis, family: MarginFamily, measure) -> bool:
    """One pass over a family's margins along ``axis``; returns whether a cell was suppressed.

    A margin with exactly one suppressed cell (its total included) gets its smallest
    published, unpinned part suppressed too (ties: the first). With no such part left, a
    total on the same dim is suppressed instead; a total held elsewhere is already final,
    so that is an error (only inconsistent margins can get there: see the module notes)."""
    vals, hid = np.moveaxis(values, axis, 0), np.moveaxis(hidden, axis, 0)  # views
    order, starts, seg, parents = family.order, family.starts, family.seg, family.parents
    part_hidden = hid[order]
    total_hidden = _total_hidden(hid, parents, family.external)
    lone = np.add.reduceat(part_hidden.astype(np.int32), starts, axis=0) + total_hidden == 1
    if not lone.any():
        return False
    vo = vals[order]
    key = np.where(part_hidden | np.moveaxis(pinned, axis, 0)[order] | np.isnan(vo), np.inf, vo)
    low = np.minimum.reduceat(key, starts, axis=0)
    pick = (key == low[seg]) & np.isfinite(key) & lone[seg]
    seen = np.cumsum(pick, axis=0, dtype=np.int32)
    before = np.concatenate([np.zeros_like(seen[:1]), seen[starts[1:] - 1]])
    rows, *rest = np.nonzero(pick & (seen - before[seg] == 1))
    hid[(order[rows], *rest)] = True
    orphan = lone & ~np.isfinite(low)
    if orphan.any():
        _suppress_totals(hid, parents, orphan, family, measure)
    return True


def _total_hidden(hid, parents, external) -> np.ndarray:
    """Suppressed-mask of each margin's total: (margins, *other dims)."""
    out = np.zeros((parents.size, *hid.shape[1:]), np.int32)
    inside = parents >= 0
    out[inside] = hid[parents[inside]]
    if external is not None:
        out[~inside] = external
    return out


def _suppress_totals(hid, parents, orphan, family: MarginFamily, measure: str) -> None:
    """Margins with one suppressed cell and no part left to suppress: suppress the total."""
    g, *rest = np.nonzero(orphan)
    if (parents[g] < 0).any():
        raise DisclosureError(
            f"{measure}: {int((parents[g] < 0).sum())} margin(s) over {family.dim!r} have one "
            "suppressed cell and no other cell to suppress, and their total (in another "
            "node) is published: the margins given are inconsistent with this node"
        )
    hid[(parents[g], *rest)] = True


def margin_families(node: xr.Dataset) -> list[MarginFamily]:
    """The node's margins along ``area`` or ``lsoa`` (the category dims are added per measure)."""
    families = []
    if AREA_DIM in node.dims and "area_type" in node.coords:
        families += area_margins(node)
    if LSOA_DIM in node.dims:
        families += lsoa_margins(node)
    return families


def category_family(node, dim, margins, measure, dims) -> MarginFamily:
    external = _external_total(margins.get(dim), measure, [d for d in dims if d != dim])
    return MarginFamily.from_groups(dim, np.zeros(node.sizes[dim], np.int64), [-1], external)


def _external_total(total: xr.Dataset | None, measure: str, rest_dims: list[str]):
    """Suppressed-mask of the margin totals over a category dim (None: published)."""
    if total is None or measure + STATUS_SUFFIX not in total:
        return None
    codes = total[measure + STATUS_SUFFIX].variable.transpose(*rest_dims).values
    return is_suppressed(codes)[..., np.newaxis]


def _family(dim, is_member, key, is_parent, codes) -> MarginFamily:
    """Members grouped by ``key``, the code of the parent (an index on the same dim)."""
    where = {c: i for i, c in zip(np.flatnonzero(is_parent), codes[is_parent], strict=True)}
    parent_of = np.array([where.get(k, -1) for k in key], dtype=np.int64)
    parent_of[~is_member | (parent_of == np.arange(codes.size))] = -1
    parents = np.unique(parent_of[parent_of >= 0])
    group = np.where(parent_of >= 0, np.searchsorted(parents, parent_of), -1)
    return MarginFamily.from_groups(dim, group, parents)


def area_margins(node: xr.Dataset) -> list[MarginFamily]:
    """The area hierarchy as margin families along ``area``.

    LTLAs sum to their county UTLA, their region and England; upper-tier units (counties and
    unitary LTLAs) sum to their region and England; regions sum to England.
    """
    codes = as_text(node[AREA_DIM].values)
    kind = as_text(node["area_type"].values)
    region = as_text(node["region_code"].values)
    utla = as_text(node["utla_code"].values)
    ltla = kind == "ltla"
    upper = (ltla & (utla == codes)) | (kind == "utla")
    country = kind == "country"
    nation = np.full(codes.size, codes[country][0] if country.any() else "")
    pairs = [
        (ltla, utla, kind == "utla"),
        (ltla, region, kind == "region"),
        (upper, region, kind == "region"),
        (ltla, nation, country),
        (upper, nation, country),
        (kind == "region", nation, country),
    ]
    families = [_family(AREA_DIM, m, k, p, codes) for m, k, p in pairs]
    return [f for f in families if f.order.size]


def lsoa_margins(node: xr.Dataset) -> list[MarginFamily]:
    """The LSOAs of each LA, and of each LA x IMD / AHAH decile, as margins whose total (the
    LA, or its decile cell, over the period) is taken as published. A lone LSOA is no
    margin: its total is itself, and the cube publishes no LA x decile x period cell."""
    if "la_code" in node.coords:
        la = as_text(node["la_code"].values)
    else:
        from lds_dask.contract import refdata

        lookup = dict(refdata.lsoas().select("lsoa11_code", "la_code").iter_rows())
        la = np.array([lookup.get(c, "") for c in as_text(node[LSOA_DIM].values)])
    keys = [la] + [
        np.char.add(la + "|", as_text(node[c].values))
        for c in LSOA_GROUP_COORDS
        if c in node.coords
    ]
    families = []
    for key in keys:
        _, group, size = np.unique(key, return_inverse=True, return_counts=True)
        group = np.where(size[group] > 1, group, -1)  # one LSOA: no margin
        families.append(MarginFamily.from_groups(LSOA_DIM, group, np.full(size.size, -1)))
    return families
