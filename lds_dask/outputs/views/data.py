"""Cube data for the explorer and the report pack, held as numpy for fast slicing.

The cube (or its disclosure-controlled view) is read once; every view after that is array
indexing, which keeps an LA switch to a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lds_dask.contract import refdata

MEASURES = {  # measure -> label with units; rates carry _lower/_upper 95% CIs
    "case_rate_per_100k": "Case rate per 100,000",
    "positivity_pct": "PCR positivity (%)",
    "testing_rate_per_100k": "People tested per 100,000",
    "people_positive": "People testing positive",
    "people_tested": "People tested",
}


BREAKDOWNS = ["age_band", "sex", "ethnicity", "imd_decile", "imd_quintile", "ahah_quintile"]


NODES = ["total", *BREAKDOWNS, "inequality"]  # what the explorer and report read


SAFE_TEXT = "Disclosure-controlled view (safe): suppressed cells are blank."


UNSAFE_TEXT = "NOT FOR RELEASE: unsuppressed values, for use inside the secure environment only."


@dataclass(frozen=True)
class NodeArrays:
    """One cube node held as numpy: variable -> (area, week[, category]) float64."""

    categories: tuple[str, ...]
    values: dict[str, np.ndarray]


@dataclass(frozen=True)
class CubeArrays:
    """Everything the explorer shows, read from the cube once, indexed by area position."""

    codes: np.ndarray
    names: np.ndarray
    area_type: np.ndarray
    region_code: np.ndarray
    weeks: np.ndarray
    nodes: dict[str, NodeArrays]
    safe: bool
    sig_vs_england: np.ndarray  # (area, week) "higher" / "similar" / "lower" / ...
    neighbours: np.ndarray  # (area, rank) LTLA codes, "" for other areas

    @property
    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.codes)}

    @property
    def ltla_codes(self) -> list[str]:
        return [str(c) for c in self.codes[self.area_type == "ltla"]]

    def week_labels(self) -> list[str]:
        return [str(w)[:10] for w in self.weeks]


def open_view(path: str | Path, safe: bool, rules=None):
    """Read the cube's nodes the views need; with ``safe`` only their disclosure-controlled
    view under ``rules`` (default :class:`~lds_dask.sdc.rules.DisclosureRules`)."""
    from lds_dask.cube.build import load_nodes, open_cube

    tree = load_nodes(open_cube(path), NODES)
    if safe:
        from lds_dask.sdc.rules import DisclosureRules, safe_view

        tree = safe_view(tree, rules or DisclosureRules())
    return tree


def _node_arrays(ds, node: str) -> NodeArrays:
    """A node's measures, CIs and ``_status`` codes (and SII/RII) as float64 numpy."""
    wanted = [
        v for m in MEASURES for v in (m, f"{m}_lower", f"{m}_upper", f"{m}_status") if v in ds
    ]
    wanted += [v for v in ds.data_vars if str(v)[:4] in ("sii_", "rii_")]
    sub = ds[wanted].transpose("area", "week", ...).compute()
    cats = tuple(str(c) for c in ds[node].values) if node in ds.dims else ()
    return NodeArrays(cats, {v: np.asarray(sub[v].values, dtype=float) for v in wanted})


def _strings(coord) -> np.ndarray:
    """A coordinate as an object array of str (zarr may hand back numpy StringDType)."""
    return np.array([str(x) for x in coord.values], dtype=object)


def load_cube_arrays(tree, safe: bool = False) -> CubeArrays:
    """Read the /total, breakdown and inequality nodes of a cube into memory once."""
    total = tree["total"].to_dataset()
    nodes = {n: _node_arrays(tree[n].to_dataset(), n) for n in NODES if n in tree.children}
    root = tree.to_dataset(inherit=False)
    return CubeArrays(
        codes=_strings(total["area"]),
        names=_strings(total["area_name"]),
        area_type=_strings(total["area_type"]),
        region_code=_strings(total["region_code"]),
        weeks=total["week"].values,
        nodes=nodes,
        safe=safe,
        sig_vs_england=np.array(
            total["sig_vs_england"].transpose("area", "week").values, dtype=object
        ).astype(str),
        neighbours=np.array([[str(c) for c in row] for row in root["neighbours"].values]),
    )


def series(cube: CubeArrays, node: str, measure: str, area: int) -> tuple[np.ndarray, ...]:
    """(value, lower, upper) over weeks (and categories) for one area; NaN CIs for counts."""
    vals = cube.nodes[node].values
    value = vals[measure][area]
    nan = np.full_like(value, np.nan)
    return (
        value,
        vals[f"{measure}_lower"][area] if f"{measure}_lower" in vals else nan,
        vals[f"{measure}_upper"][area] if f"{measure}_upper" in vals else nan,
    )


def series_all(cube: CubeArrays, measure: str) -> tuple[np.ndarray, ...]:
    """(value, lower, upper) of /total for every area and week."""
    vals = cube.nodes["total"].values
    nan = np.full_like(vals[measure], np.nan)
    return vals[measure], vals.get(f"{measure}_lower", nan), vals.get(f"{measure}_upper", nan)


def trend_data(cube: CubeArrays, la: str, measure: str) -> dict[str, np.ndarray]:
    """Columns of the trend source: the LA, its region and England, each with CIs."""
    index = cube.index
    i = index[la]
    areas = {
        "la": i,
        "region": index.get(cube.region_code[i], i),
        "england": index[refdata.ENGLAND_CODE],
    }
    data = {"week": cube.weeks}
    for key, a in areas.items():
        data[key], data[f"{key}_lo"], data[f"{key}_hi"] = series(cube, "total", measure, a)
    return data


def ranked_data(cube: CubeArrays, measure: str, week: int) -> dict[str, np.ndarray]:
    """Caterpillar columns: LTLAs sorted by the measure in one week (rank 1 = lowest)."""
    ltla = np.flatnonzero(cube.area_type == "ltla")
    value, lower, upper = (a[:, week] for a in series_all(cube, measure))
    order = ltla[np.argsort(value[ltla], kind="stable")]
    return {
        "rank": np.arange(1, len(order) + 1),
        "value": value[order],
        "lower": lower[order],
        "upper": upper[order],
        "code": cube.codes[order].tolist(),
        "name": cube.names[order].tolist(),
    }
