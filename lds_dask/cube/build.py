"""Build and open the all-LA profile cube (xarray DataTree on zarr, chunked by area).

``build_cube`` runs three kinds of Dask task over LA bundles (Dask orchestrates,
polars computes): person-week ownership (``cube_people``), then one counting pass per
bundle that computes every breakdown in one polars pass (``cube_counts``). The client
assembles small dense arrays, sums LA partials into UTLAs, regions and England
(``cube_arrays``), derives measures (``cube_measures``) and writes one zarr group per
node, every area variable chunked one area per chunk, so ``open_cube`` (whose reader is
``cube_read``) + selecting one LA reads only that LA's chunks. The contract is
docs/architecture.md ("The cube").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import xarray as xr

from lds_dask import __version__
from lds_dask.contract import refdata
from lds_dask.cube.counts import CountParams, count_bundle
from lds_dask.cube.neighbours import neighbours_array
from lds_dask.cube.nodes import build_area_nodes, build_lsoa_node
from lds_dask.cube.people import PEOPLE_SCOPES, find_person_week_owners
from lds_dask.cube.read import CubeError, open_tree
from lds_dask.cube.write import write_cube
from lds_dask.runtime.tasks import TaskRunner
from lds_dask.store.read import Store, StoreError

__all__ = ["CubeConfig", "CubeError", "build_cube", "cube_to_frame", "open_cube"]

DEFINITIONS = (
    "People are person-weeks. Each person-week (person_id, ISO week) belongs to exactly one "
    "LA: the LA of the person's first valid (non-VOID) in-scope test that week, earliest "
    "specimen_date first, ties by smallest test_id; its categories are that test's. It is "
    "positive when any in-scope test that week, in any LA, is POSITIVE. Scope: {scope}. "
    "tests and positive_tests count every test of every type (VOID counts as a test). "
    "UTLA, region and England values are sums of their LAs. Rates use ONS mid-2020 "
    "population (Byar's limits, exact Poisson below 10); positivity_pct uses Wilson limits. "
    "case_rate_dsr_per_100k: ESP2013, Dobson limits, NaN below 10 people positive; unknown "
    "ages are left out. sig_vs_*: Fingertips rule, the area's 95% CI against the comparator's "
    "value. survey_prevalence_pct: sum(w*positive)/sum(w), Wilson limits on the Kish "
    "effective sample size; positivity_to_prevalence_ratio > 1 indicates test-seeking bias. "
    "inequality: SII/RII over IMD deciles (1 = most deprived) by weighted least squares on "
    "the ridit; case-rate weights are population x share of LSOAs per decile, positivity "
    "weights are people tested per decile. lsoa node: a week belongs to the period "
    "holding its Monday; records without an LSOA are left out of it."
)


# Bundles per worker thread at least: balances load when LA sizes differ, while the
# per-task overhead (a few ms) stays negligible.
BUNDLES_PER_THREAD = 4
AREA_COORDS = ("area_name", "area_type", "region_code", "utla_code")


@dataclass(frozen=True)
class CubeConfig:
    """How the cube is defined and computed.

    people_scope: "PCR" (UKHSA dashboard) or "ALL" test types for people and positivity.
    period_starts / period_names: the lsoa node's periods (ISO dates where each later
    period starts; one more name than starts). bundle_mb: target parquet MB per task.
    """

    people_scope: str = "PCR"
    period_starts: tuple[str, ...] = ("2020-09-01",)
    period_names: tuple[str, ...] = ("wave_1", "wave_2")
    n_neighbours: int = 15
    bundle_mb: float = 64.0

    def __post_init__(self):
        if self.people_scope not in PEOPLE_SCOPES:
            raise CubeError(f"people_scope must be one of {', '.join(PEOPLE_SCOPES)}")
        if len(self.period_names) != len(self.period_starts) + 1:
            raise CubeError("period_names needs exactly one more name than period_starts")
        try:
            starts = [dt.date.fromisoformat(s) for s in self.period_starts]
        except ValueError:
            raise CubeError("period_starts must be ISO dates (YYYY-MM-DD)") from None
        if starts != sorted(starts):
            raise CubeError("period_starts must be in increasing order")
        if not 1 <= self.n_neighbours <= 308:
            raise CubeError("n_neighbours must be between 1 and 308")

    def count_params(self) -> CountParams:
        starts = tuple(dt.date.fromisoformat(s) for s in self.period_starts)
        return CountParams(self.people_scope, starts, tuple(self.period_names))


def build_cube(
    store: str | Path,
    out: str | Path,
    client=None,
    config: CubeConfig = CubeConfig(),
    progress: bool = True,
) -> Path:
    """Build the all-LA profile cube from an ingest store and write it to ``out`` (zarr).

    With ``client`` (a ``distributed.Client``) every pass runs as Dask tasks, one per
    LA bundle; without, the same tasks run in this process. Returns ``out``.
    """
    out = Path(out)
    try:
        store = Store(store)
    except StoreError as exc:
        raise CubeError(str(exc)) from None
    runner = TaskRunner(client, progress)
    bundles = store.bundle_las(
        store.la_codes(),
        int(config.bundle_mb * 2**20),
        min_bundles=BUNDLES_PER_THREAD * runner.n_threads(),
    )
    decisions = find_person_week_owners(runner, store, bundles, config.people_scope)
    parts = runner.gather(
        runner.map(
            count_bundle,
            bundles,
            store,
            config.count_params(),
            runner.share(decisions),
            label="cube: count",
        )
    )
    tree = assemble_tree(parts, store, config)
    write_cube(tree, out)  # in this process: faster than shipping nodes to workers
    return out


def assemble_tree(parts: list[dict], store: Store, config: CubeConfig) -> xr.DataTree:
    """The cube DataTree from the gathered bundle frames."""
    counts = pl.concat([p["counts"] for p in parts])
    if counts.height == 0:
        raise CubeError(f"{store}: the store holds no records")
    surveys = [p["survey"] for p in parts if p["survey"] is not None]
    survey = pl.concat(surveys) if surveys else None
    nodes = build_area_nodes(counts, survey, store.read_population())
    lsoa = pl.concat([p["lsoa"] for p in parts], how="diagonal_relaxed")
    nodes["lsoa"] = build_lsoa_node(lsoa, config.period_names, store.read_lsoa_ahah())
    root = root_dataset(nodes["total"], store, config)
    # a copy of the area coordinates on the root: open_cube reads them once for all nodes
    root = root.assign_coords({c: nodes["total"][c] for c in AREA_COORDS})
    return xr.DataTree.from_dict({"/": root, **{f"/{k}": v for k, v in nodes.items()}})


def root_dataset(total: xr.Dataset, store: Store, config: CubeConfig) -> xr.Dataset:
    """Root: ``neighbours(area, rank)`` and provenance attrs."""
    areas = [str(a) for a in total["area"].values]
    nb = neighbours_array(areas, config.n_neighbours)
    ds = xr.Dataset(
        {"neighbours": (("area", "rank"), nb)},
        coords={
            "area": np.array(areas, dtype=object),
            "rank": np.arange(1, config.n_neighbours + 1),
        },
    )
    ds["neighbours"].attrs.update(
        units="GSS code",
        long_name=(
            "Statistical nearest neighbours of each LTLA, nearest first (standardised IMD domain "
            "ranks, log population, age structure, log density); empty for other areas"
        ),
    )
    ds.attrs.update(
        title="lds-dask all-LA COVID-19 testing profile cube",
        store_manifest_sha256=store.manifest_sha256,
        store_format=json.dumps(store.format),
        config=json.dumps(dataclasses.asdict(config)),
        lds_dask_version=__version__,
        definitions=DEFINITIONS.format(scope=config.people_scope),
        attribution=refdata.ATTRIBUTION,
    )
    return ds


def open_cube(path: str | Path) -> xr.DataTree:
    """Open a cube lazily; nothing but coordinates is read until used.

    Variables are xarray's lazily indexed arrays (no dask) over ``cube_read``'s reader:
    indexing composes without reading, and loading a selection reads only the byte ranges
    it covers, so selecting one LA reads that LA's inner chunk of each variable (and each
    shard's index once), without zarr-python's per-read overhead and with no task graph.
    The small area coordinates (``area_name``, ...) are read once, from the root's copy,
    and set on every node. Call ``.chunk()`` on a node for dask arrays. Raises
    :class:`CubeError` for a path that is not a cube in a layout this version reads.
    """
    path = Path(path)
    if not (path / "zarr.json").is_file() and not (path / ".zgroup").is_file():
        raise CubeError(f"{path}: not a cube (no zarr store found; run `lds-dask cube`)")
    return open_tree(path, shared=AREA_COORDS)


def load_nodes(cube: xr.DataTree, nodes) -> xr.DataTree:
    """The root and the named nodes of ``cube``, read into memory in one compute.

    Views (plots, explorer, report) read only the nodes they draw; the disclosure-controlled
    view of these nodes does not depend on the nodes left out.
    """
    import dask

    parts = {"/": cube.to_dataset(inherit=False)}
    parts |= {f"/{n}": cube[n].to_dataset(inherit=False) for n in nodes if n in cube.children}
    return xr.DataTree.from_dict(dask.compute(parts)[0])


def cube_to_frame(cube: xr.DataTree, node: str, kind: str = "polars"):
    """One node as a tidy long table: area_code, area_name, area_type, week, breakdown,
    category, measure, value (numeric measures only; the sig_* labels are left out).

    ``kind`` is "polars" or "pandas". For the lsoa node, area_code is the LSOA, week is
    null and category is the period.
    """
    if node not in cube.children:
        raise CubeError(f"no node {node!r} in the cube (nodes: {', '.join(cube.children)})")
    ds = cube[node].to_dataset()  # inherits the area coordinate from the root
    names = [n for n, v in ds.data_vars.items() if v.dtype.kind in "iuf"]
    frame = _long_frame(ds[names].compute(), node)
    return frame.to_pandas() if kind == "pandas" else frame


def _long_frame(ds: xr.Dataset, node: str) -> pl.DataFrame:
    first = next(iter(ds.data_vars.values()))
    dims = list(first.dims)
    grid = [g.ravel() for g in np.meshgrid(*[np.arange(ds.sizes[d]) for d in dims], indexing="ij")]
    key = pl.DataFrame({d: _labels(ds[d], g) for d, g in zip(dims, grid, strict=True)})
    cat_dims = [d for d in dims if d not in ("area", "week", "lsoa")]
    if node == "lsoa":
        key = key.with_columns(
            area_code=pl.col("lsoa"),
            area_name=pl.lit(""),
            area_type=pl.lit("lsoa"),
            week=pl.lit(None, pl.Datetime("ns")),
        )
    else:
        area = dims.index("area")
        key = key.with_columns(
            area_code=pl.col("area"),
            area_name=_labels(ds["area_name"], grid[area]),
            area_type=_labels(ds["area_type"], grid[area]),
            week=pl.Series(ds["week"].values[grid[dims.index("week")]]),
        )
    category = (
        pl.concat_str([pl.col(d) for d in cat_dims], separator="|") if cat_dims else pl.lit("all")
    )
    key = key.select(
        "area_code", "area_name", "area_type", "week", breakdown=pl.lit(node), category=category
    )
    frames = [
        key.with_columns(
            measure=pl.lit(name),
            value=pl.Series(ds[name].transpose(*dims).values.ravel().astype(float)),
        )
        for name in ds.data_vars
    ]
    return pl.concat(frames)


def _labels(coord: xr.DataArray, index: np.ndarray) -> np.ndarray:
    """Coordinate values at ``index``; strings as numpy unicode so polars reads str."""
    values = coord.values
    if values.dtype.kind in "iufM":
        return values[index]
    return np.array(values.tolist(), dtype=str)[index]
