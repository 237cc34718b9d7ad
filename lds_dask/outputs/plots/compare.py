"""Comparisons across LAs: caterpillar, funnel, inequality by IMD decile, neighbours.

Same conventions as :mod:`lds_dask.outputs.plots.figures` (which re-exports these): titles, units, the
caption with the view and the OGL attribution, colour-blind-safe colours, periods, and
:func:`lds_dask.outputs.plots.base.empty_plot` when every value of the selection is suppressed.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import xarray as xr

from lds_dask.contract import refdata

from lds_dask.cube import stats
from lds_dask.outputs.plots.base import (
    ALL_SUPPRESSED,
    ENGLAND_COLOUR,
    LA_COLOUR,
    OKABE_ITO,
    OTHER_COLOUR,
    REGION_COLOUR,
    Period,
    _dash,
    _finish_layout,
    _series,
    _style,
    _titled,
    _values,
    area_name,
    as_str,
    caption_text,
    check_la,
    empty_plot,
    finish,
    has_values,
    measure_label,
    resolve_period,
    select_period,
)

FUNNEL_BASIS = {  # measure -> (x-axis count, statistic, England average num/den, multiplier)
    "positivity_pct": ("people_tested", "proportion", ("people_positive", "people_tested"), 100),
    "case_rate_per_100k": ("people_positive", "rate", ("people_positive", "population"), 1e5),
    "testing_rate_per_100k": ("people_tested", "rate", ("people_tested", "population"), 1e5),
}


def _ltla_period(cube: xr.DataTree, measure: str, period):
    """(/total of the LTLAs for the period, England for the period, Period)."""
    total = cube["total"].to_dataset()
    per = resolve_period(total, period)
    ds = select_period(total, per, measure)
    ltla = ds.isel(area=np.flatnonzero(as_str(ds["area_type"].values) == "ltla"))
    return ltla, ds.sel(area=refdata.ENGLAND_CODE), per


def ltla_values(cube: xr.DataTree, measure: str, period=None):
    """(LTLA frame of value/lower/upper/name, England dataset, Period) for one period."""
    ltla, england, per = _ltla_period(cube, measure, period)
    v, lo, hi = _values(ltla, measure)
    frame = {
        "la_code": as_str(ltla["area"].values),
        "la_name": as_str(ltla["area_name"].values),
        measure: v,
        "lower": lo,
        "upper": hi,
    }
    return frame, england, per


def _highlight(cube, la: str | None, data: dict, xname: str, ydim) -> list:
    """The highlighted LA as a larger point in its colour (nothing when `la` is None)."""
    if la is None:
        return []
    check_la(cube, la)
    sel = data["la_code"] == la
    points = hv.Scatter(
        {k: np.asarray(v)[sel] for k, v in data.items()},
        xname,
        [ydim, "la_code", "la_name"],
        label=area_name(cube, la),
    )
    return [_style(points, color=LA_COLOUR, bokeh={"size": 10}, mpl={"s": 40})]


def caterpillar(
    cube: xr.DataTree,
    measure: str = "case_rate_per_100k",
    period=None,
    highlight: str | None = None,
    safe: bool | None = None,
):
    """All LTLAs ranked by a measure for a period, with 95% CIs, England and one LA marked.

    Points are ordered by value (rank 1 = lowest); suppressed (NaN) LAs are left out and
    counted in the title. The Scatter's vdims carry la_code and la_name for hover/tap.
    """
    frame, england, per = ltla_values(cube, measure, period)
    label = measure_label(cube["total"], measure)
    order = np.argsort(frame[measure], kind="stable")
    order = order[~np.isnan(frame[measure][order])]
    if order.size == 0:
        return empty_plot(cube, safe, f"{label}, {per.label}")
    data = {k: np.asarray(v)[order] for k, v in frame.items()}
    data["rank"] = np.arange(1, order.size + 1)
    ydim = hv.Dimension(measure, label=label)
    bars = hv.Segments(
        (data["rank"], data["lower"], data["rank"], data["upper"]), ["rank", ydim, "x1", "y1"]
    )
    layers = [
        _style(bars, color=OTHER_COLOUR, alpha=0.5),
        _style(
            hv.Scatter(data, "rank", [ydim, "la_code", "la_name"]),
            color=OTHER_COLOUR,
            bokeh={"size": 4, "tools": ["hover"]},
            mpl={"s": 6},
        ),
    ]
    if has_values(england[measure]):
        layers.append(
            _style(_dash(hv.HLine(float(england[measure])), "dashed"), color=ENGLAND_COLOUR)
        )
    layers += _highlight(cube, highlight, data, "rank", ydim)
    missing = frame[measure].size - order.size
    note = f" ({missing} suppressed LAs not shown)" if missing else ""
    return finish(
        hv.Overlay(layers),
        _titled(cube, safe, f"{label}, {per.label}: {order.size} LAs ranked{note}"),
        caption_text(cube, safe, "Bars: 95% confidence intervals. Dashed line: England."),
        "LA rank (1 = lowest)",
        label,
        xrotation=0,
    )


def funnel_lines(size: np.ndarray, average: float, statistic: str, multiplier: float):
    """Control limits (95%: 2s, 99.8%: 3s) on a size grid, via stats.funnel_limits."""
    return stats.funnel_limits(size, average, statistic=statistic, multiplier=multiplier)


def _funnel_limits(grid, average, statistic, mult, xname, ydim) -> list:
    """The four control-limit curves and the England line."""
    lims = funnel_lines(grid, average, statistic, mult)
    layers = [
        _style(
            _dash(
                hv.Curve(
                    (grid, lims[f"{side}_{s}"]),
                    xname,
                    ydim,
                    label=f"{'95' if s == '2s' else '99.8'}% limits",
                ),
                "dashed" if s == "2s" else "dotted",
            ),
            color=OKABE_ITO["blue" if s == "2s" else "purple"],
        )
        for s in ("2s", "3s")
        for side in ("lower", "upper")
    ]
    return layers + [_style(hv.HLine(average * mult), color=ENGLAND_COLOUR)]


def funnel(
    cube: xr.DataTree,
    measure: str = "positivity_pct",
    period=None,
    highlight: str | None = None,
    safe: bool | None = None,
):
    """LTLAs as points against 95% and 99.8% control limits around England (PHE funnel).

    Positivity uses people tested on the x axis (Wilson limits); rates use the number
    of events (exact Poisson limits), as PHEindicatormethods' calculate_funnel_limits.
    """
    if measure not in FUNNEL_BASIS:
        raise ValueError(f"funnel supports {sorted(FUNNEL_BASIS)}, not {measure}")
    xname, statistic, (num, den), mult = FUNNEL_BASIS[measure]
    ltla, england, per = _ltla_period(cube, measure, period)
    label = measure_label(cube["total"], measure)
    x = ltla[xname].astype(float).values
    y = ltla[measure].astype(float).values
    with np.errstate(divide="ignore", invalid="ignore"):
        average = float(england[num]) / float(england[den])
    shown = np.isfinite(x) & np.isfinite(y) & (x > 0)
    if not shown.any() or not np.isfinite(average):
        return empty_plot(cube, safe, f"Funnel plot of {label}, {per.label}")
    grid = np.geomspace(max(x[shown].min(), 1), x[shown].max() * 1.05, 200)
    ydim = hv.Dimension(measure, label=label)
    layers = _funnel_limits(grid, average, statistic, mult, xname, ydim)
    pts = {
        xname: x,
        measure: y,
        "la_code": as_str(ltla["area"].values),
        "la_name": as_str(ltla["area_name"].values),
    }
    layers.append(
        _style(
            hv.Scatter(pts, xname, [ydim, "la_code", "la_name"]),
            color=OTHER_COLOUR,
            bokeh={"size": 5, "tools": ["hover"]},
            mpl={"s": 8},
        )
    )
    layers += _highlight(cube, highlight, pts, xname, ydim)
    return finish(
        _style(hv.Overlay(layers), logx=True),
        _titled(cube, safe, f"Funnel plot of {label}, {per.label}"),
        caption_text(
            cube,
            safe,
            "Solid line: England. Control limits around England: 95% dashed, 99.8% dotted.",
        ),
        f"{measure_label(cube['total'], xname)}",
        label,
        xrotation=0,
    )


def sii_line(cube: xr.DataTree, la: str, measure: str, per: Period, deciles: xr.Dataset):
    """(y at most deprived end, y at least deprived end) of the SII regression line.

    One week: the cube's /inequality SII and RII (y0 = SII / (RII - 1), y1 = y0 + SII,
    valid for the fitted line whether or not phe_sii's transform was used). A range:
    refitted on the period's decile values with stats.sii_fast, weighted by people
    tested (the cube stores weekly SIIs only).
    """
    if per.start == per.end:
        node = cube["inequality"].to_dataset().sel(area=la, week=per.start)
        if f"sii_{measure}" not in node:
            raise ValueError(f"the cube has no SII for {measure}")
        sii, rii = float(node[f"sii_{measure}"]), float(node[f"rii_{measure}"])
        y0 = sii / (rii - 1) if np.isfinite(rii) and rii != 1 else np.nan
        return y0, y0 + sii
    values = deciles[measure].astype(float).values
    weights = deciles["people_tested"].astype(float).values
    sii, _, intercept = stats.sii_fast(values, weights)
    return float(intercept), float(intercept + sii)


def inequality(
    cube: xr.DataTree,
    la: str,
    period=None,
    measure: str = "positivity_pct",
    safe: bool | None = None,
):
    """A measure by IMD decile (1 = most deprived) for one LA, with CIs and the SII line.

    The SII line runs across the ridit scale, drawn from decile 0.5 to 10.5 (left out when
    the SII is suppressed). The default measure is positivity: the cube has no IMD-decile
    denominators for rates.
    """
    check_la(cube, la)
    node = cube["imd_decile"].to_dataset()
    per = resolve_period(node, period)
    deciles = [str(d) for d in range(1, 11)]
    ds = select_period(node.sel(area=[la], imd_decile=deciles), per, measure).sel(area=la)
    label = measure_label(node, measure)
    title = f"{label} by IMD 2019 decile: {area_name(cube, la)}, {per.label}"
    v, lo, hi = _values(ds, measure)
    if not has_values(v):
        return empty_plot(cube, safe, title)
    ydim = hv.Dimension(measure, label=label)
    x = np.arange(1, 11)
    layers = [
        _style(hv.Segments((x, lo, x, hi), ["imd_decile", ydim, "x1", "y1"]), color=LA_COLOUR),
        _style(
            hv.Scatter((x, v), "imd_decile", ydim, label=area_name(cube, la)),
            color=LA_COLOUR,
            bokeh={"size": 8, "tools": ["hover"]},
            mpl={"s": 30},
        ),
    ]
    y0, y1 = sii_line(cube, la, measure, per, ds)
    if has_values([y0]) and has_values([y1]):
        line = hv.Curve(([0.5, 10.5], [y0, y1]), "imd_decile", ydim, label=f"SII {y1 - y0:.3g}")
        layers.append(_style(_dash(line, "dashed"), color=ENGLAND_COLOUR))
    return finish(
        hv.Overlay(layers),
        _titled(cube, safe, title),
        caption_text(
            cube, safe, "Bars: 95% confidence intervals. Dashed: slope index of inequality."
        ),
        "IMD 2019 decile (1 = most deprived 10%)",
        label,
        xrotation=0,
    )


def neighbours(
    cube: xr.DataTree, la: str, measure: str = "case_rate_per_100k", safe: bool | None = None
):
    """Small multiples of an LA and its 15 statistical neighbours over weeks, with England.

    Panel titles are area names (with a note when all the area's values are suppressed);
    the LA's own panel comes first, drawn in its colour.
    """
    check_la(cube, la)
    codes = [la] + [
        c for c in as_str(cube["/"].to_dataset()["neighbours"].sel(area=la).values) if c
    ]
    total = cube["total"].to_dataset()
    weeks = total["week"].values
    keep = [m for m in (measure, f"{measure}_lower", f"{measure}_upper") if m in total]
    sub = total[keep].sel(area=[*codes, refdata.ENGLAND_CODE])
    england = sub.sel(area=refdata.ENGLAND_CODE)
    panels = []
    for code in codes:
        ds, name = sub.sel(area=code), area_name(cube, code)
        colour = LA_COLOUR if code == la else REGION_COLOUR
        title = name if has_values(ds[measure]) else f"{name} ({ALL_SUPPRESSED.lower()})"
        panel = _series(weeks, ds, measure, name, colour) * _series(
            weeks, england, measure, "England", ENGLAND_COLOUR, "dashed"
        )
        panels.append(_style(panel, title=title, show_legend=False))
    return _finish_layout(
        hv.Layout(panels).cols(4),
        cube,
        safe,
        f"{measure_label(total, measure)}: {area_name(cube, la)} and its "
        "statistical neighbours (England dashed)",
        "Week",
        measure_label(total, measure),
    )
