"""Comparison plots of a profile cube (HoloViews objects, bokeh and matplotlib backends).

Every function takes a cube (``xarray.DataTree`` following docs/architecture.md) or its
disclosure-controlled view, and returns a HoloViews object carrying a title, axis labels
with units, and a caption (the view, then the OGL attribution) drawn below the plot in
both backends. Which view a plot shows is read from the data (``<measure>_status``
variables mark the disclosure-controlled view) and written into the title and caption;
``safe=True`` refuses an unsuppressed cube. Colours are Okabe-Ito (colour-blind safe).

Periods: ``None`` is the last week; a single week (``"2020-11-02"``) is that week; a
``(start, end)`` pair (inclusive) sums counts over those weeks and recomputes rates
(over the whole period, not per week) and their CIs. Measures that cannot be recomputed
from counts (DSR, survey prevalence) accept single weeks only. Cells suppressed in any
week of a range stay suppressed (NaN) in the range.

Maps (``hexmap``, ``choropleth``, ``bivariate_map``) live in :mod:`lds_dask.plots_maps`
and are re-exported here. :func:`save_html` / :func:`save_png` write any of these objects.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers bokeh options)
import holoviews.plotting.mpl  # noqa: F401  (registers matplotlib options)
import numpy as np
import xarray as xr

from lds_dask import refdata, stats

# Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
LA_COLOUR = OKABE_ITO["vermillion"]
REGION_COLOUR = OKABE_ITO["blue"]
ENGLAND_COLOUR = OKABE_ITO["black"]
OTHER_COLOUR = "#999999"
SEQUENTIAL_CMAP = "cividis"  # perceptually uniform and colour-blind safe
SAFE_LABEL = "Disclosure-controlled view"
UNSAFE_LABEL = "NOT FOR RELEASE: unsuppressed"
RECOMPUTABLE = {
    "tests",
    "positive_tests",
    "people_tested",
    "people_positive",
    "testing_rate_per_100k",
    "case_rate_per_100k",
    "positivity_pct",
}
COUNTS = ["tests", "positive_tests", "people_tested", "people_positive"]
BOKEH_SIZE = {"width": 800, "height": 400}


# --- views, labels, captions -------------------------------------------------------------


def is_disclosure_controlled(cube: xr.DataTree) -> bool:
    """True when the cube is the disclosure-controlled view (it has ``*_status`` vars)."""
    return any(str(v).endswith("_status") for v in cube["total"].data_vars)


def view_label(cube: xr.DataTree, safe: bool | None = None) -> str:
    """The view banner for titles and captions; ``safe=True`` demands a controlled view."""
    controlled = is_disclosure_controlled(cube)
    if safe and not controlled:
        raise ValueError(
            "safe=True needs the disclosure-controlled view: "
            "pass lds_dask.disclosure.safe_view(cube, rules)"
        )
    return SAFE_LABEL if controlled else UNSAFE_LABEL


def caption_text(cube: xr.DataTree, safe: bool | None = None, note: str = "") -> str:
    """The caption under every plot: view, optional note, OGL attribution."""
    return " ".join(filter(None, [view_label(cube, safe) + ".", note, refdata.ATTRIBUTION]))


def measure_label(node: xr.Dataset, measure: str) -> str:
    """Axis label 'long name (units)' from the measure's attrs (falls back to its name)."""
    attrs = node[measure].attrs if measure in node else {}
    name = attrs.get("long_name", measure.replace("_", " "))
    units = attrs.get("units")
    return f"{name} ({units})" if units else name


def caption_lines(text: str, width: int = 140) -> list[str]:
    """The caption wrapped sentence by sentence, so the licence sentence stays whole."""
    return [
        line for sentence in re.split(r"(?<=\.) ", text) for line in textwrap.wrap(sentence, width)
    ]


def _bokeh_caption(text: str):
    def hook(plot, element):
        from bokeh.models import Title

        for line in reversed(caption_lines(text)):
            plot.state.add_layout(
                Title(text=line, text_font_size="8pt", text_font_style="italic"), "below"
            )

    return hook


def _mpl_caption(text: str):
    def hook(plot, element):
        ax = plot.handles["axis"]
        ax.annotate(
            "\n".join(caption_lines(text, 110)),
            xy=(0, -0.22),
            xycoords="axes fraction",
            va="top",
            ha="left",
            fontsize=6,
            style="italic",
        )

    return hook


def finish(obj, title: str, caption: str, xlabel: str = "", ylabel: str = "", **bokeh):
    """Title, axis labels, size and caption hooks on a plot, for both backends."""
    common = {"title": title, "xrotation": 30}
    if xlabel or ylabel:
        common |= {"xlabel": xlabel, "ylabel": ylabel}
    obj = obj.opts(**common, backend="bokeh").opts(**common, backend="matplotlib")
    obj = obj.opts(hooks=[_bokeh_caption(caption)], **(BOKEH_SIZE | bokeh), backend="bokeh")
    return obj.opts(
        hooks=[_mpl_caption(caption)], fig_inches=(9, 4.5), aspect=2, backend="matplotlib"
    )


def _titled(cube, safe, text: str) -> str:
    return f"{text} [{view_label(cube, safe)}]"


# --- data access -------------------------------------------------------------------------


def as_str(values) -> np.ndarray:
    """Plain numpy str array from any string dtype (fixed, object or StringDType)."""
    return np.array([str(v) for v in np.asarray(values).tolist()], dtype=str)


def area_name(cube: xr.DataTree, code: str) -> str:
    """The area's name; a KeyError naming the code when the cube has no such area."""
    names = cube["total"]["area_name"]
    if code not in names["area"].values:
        raise KeyError(f"area {code!r} is not in the cube")
    return str(names.sel(area=code).values.item())


def check_la(cube: xr.DataTree, la: str) -> None:
    """Raise KeyError unless `la` is one of the cube's LTLAs."""
    total = cube["total"]
    if (
        la not in total["area"].values
        or str(total["area_type"].sel(area=la).values.item()) != "ltla"
    ):
        raise KeyError(f"{la!r} is not a lower-tier LA code in this cube")


def _recompute(ds: xr.Dataset) -> xr.Dataset:
    """Rates and positivity (with 95% CIs) from summed counts, as the cube defines them."""
    out = ds.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, num in (
            ("testing_rate_per_100k", "people_tested"),
            ("case_rate_per_100k", "people_positive"),
        ):
            x, pop = ds[num].astype(float), ds["population"]
            out[name] = x / pop * 1e5
            out[f"{name}_lower"], out[f"{name}_upper"] = stats.rate_ci(x, pop)
        value, lower, upper = stats.proportion_ci(
            ds["people_positive"].astype(float), ds["people_tested"].astype(float), 100
        )
    out["positivity_pct"], out["positivity_pct_lower"], out["positivity_pct_upper"] = (
        value,
        lower,
        upper,
    )
    for name in out.data_vars:
        out[name].attrs = ds[name].attrs if name in ds else {}
    return out


@dataclass(frozen=True)
class Period:
    """A resolved period: first and last week (inclusive) and a label for titles."""

    start: np.datetime64
    end: np.datetime64

    @property
    def label(self) -> str:
        s, e = (str(d)[:10] for d in (self.start, self.end))
        return f"week of {s}" if s == e else f"weeks {s} to {e}"


def resolve_period(node: xr.Dataset, period=None) -> Period:
    """None -> last week; a week -> that week; (start, end) -> inclusive range."""
    weeks = node["week"].values
    if period is None:
        return Period(weeks[-1], weeks[-1])
    start, end = period if isinstance(period, tuple | list) else (period, period)
    start, end = np.datetime64(start, "ns"), np.datetime64(end, "ns")
    inside = weeks[(weeks >= start) & (weeks <= end)]
    if inside.size == 0:
        raise ValueError(f"no cube weeks between {str(start)[:10]} and {str(end)[:10]}")
    return Period(inside[0], inside[-1])


def select_period(node: xr.Dataset, period: Period, measure: str) -> xr.Dataset:
    """The node for one period (week dim dropped); counts summed and rates recomputed."""
    if period.start == period.end:
        return node.sel(week=period.start)
    if measure not in RECOMPUTABLE:
        raise ValueError(f"{measure} cannot be summed over weeks; choose a single week")
    part = node.sel(week=slice(period.start, period.end))
    summed = part[COUNTS].sum("week", skipna=False)
    summed["population"] = part["population"].mean("week")
    return _recompute(summed)


def _values(ds: xr.Dataset, measure: str):
    """(value, lower, upper) arrays of a measure; NaN limits when it has none."""
    v = ds[measure].astype(float).values
    limits = [
        ds[f"{measure}{s}"].astype(float).values
        if f"{measure}{s}" in ds
        else np.full_like(v, np.nan)
        for s in ("_lower", "_upper")
    ]
    return v, *limits


def _style(el, bokeh: dict | None = None, mpl: dict | None = None, **common):
    """Apply options valid in both backends plus backend-specific ones."""
    el = el.opts(**common, **(bokeh or {}), backend="bokeh")
    return el.opts(**common, **(mpl or {}), backend="matplotlib")


def _dash(el, style: str):
    return _style(
        el, bokeh={"line_dash": style}, mpl={"linestyle": "--" if style == "dashed" else ":"}
    )


def _series(weeks, ds, measure: str, label: str, colour: str, dash: str | None = None):
    """A measure's curve over weeks with its 95% CI ribbon (the ribbon has no legend)."""
    v, lo, hi = _values(ds, measure)
    ydim = hv.Dimension(measure, label=measure_label(ds, measure))
    ribbon = _style(
        hv.Area((weeks, lo, hi), "week", [ydim, f"{measure}_upper"]),
        alpha=0.15,
        bokeh={"color": colour, "line_alpha": 0},
        mpl={"color": colour, "facecolor": colour, "linewidth": 0},
    )
    curve = _style(hv.Curve((weeks, v), "week", ydim, label=label), color=colour)
    return ribbon * (_dash(curve, dash) if dash else curve)


def restriction_marks(weeks: np.ndarray, y: float):
    """Dashed lines and labels at the national restriction dates within the weeks shown."""
    events = refdata.restrictions()
    end = weeks[-1] + np.timedelta64(6, "D")
    marks = []
    for date, event in events.iter_rows():
        when = np.datetime64(date, "ns")
        if weeks[0] <= when <= end:
            marks.append(_style(_dash(hv.VLine(when), "dotted"), color=OKABE_ITO["green"]))
            marks.append(
                _style(
                    hv.Text(when, y, f" {event}", halign="left", valign="top", fontsize=8),
                    color=OKABE_ITO["green"],
                )
            )
    return marks


def trend(
    cube: xr.DataTree, la: str, measure: str = "case_rate_per_100k", safe: bool | None = None
):
    """An LA against its region and England over the cube's weeks, with 95% CI ribbons.

    National restriction milestones (refdata.restrictions) in the window are marked.
    Curves are labelled with the area names (the LA's curve is ``label == LA name``).
    """
    check_la(cube, la)
    total = cube["total"].to_dataset()
    region = str(total["region_code"].sel(area=la).values.item())
    weeks = total["week"].values
    layers = []
    for code, colour, dash in (
        (refdata.ENGLAND_CODE, ENGLAND_COLOUR, "dashed"),
        (region, REGION_COLOUR, None),
        (la, LA_COLOUR, None),
    ):
        layers.append(
            _series(weeks, total.sel(area=code), measure, area_name(cube, code), colour, dash)
        )
    top = float(
        np.nanmax(
            total[[m for m in (measure, f"{measure}_upper") if m in total]]
            .sel(area=[la, region, refdata.ENGLAND_CODE])
            .to_array()
            .values
        )
    )
    obj = hv.Overlay(layers + restriction_marks(weeks, top))
    title = _titled(
        cube,
        safe,
        f"{measure_label(total, measure)}: {area_name(cube, la)}, "
        f"{area_name(cube, region)} and England",
    )
    return finish(
        obj.opts(legend_position="top_left", backend="bokeh"),
        title,
        caption_text(cube, safe, "Shaded bands: 95% confidence intervals."),
        "Week (ISO week starting Monday)",
        measure_label(total, measure),
    )


def breakdown_trend(
    cube: xr.DataTree,
    la: str,
    breakdown: str = "age_band",
    measure: str = "positivity_pct",
    safe: bool | None = None,
):
    """One panel per category of `breakdown`: the LA (with 95% CI) against England.

    `breakdown` is a single-dimension node (age_band, sex, ethnicity, imd_decile,
    imd_quintile, ahah_quintile). Categories with no values for the LA are left out.
    """
    check_la(cube, la)
    node = cube[breakdown].to_dataset()
    weeks = node["week"].values
    panels = []
    for cat in node[breakdown].values:
        ds = node.sel({breakdown: cat})
        if np.isnan(ds[measure].sel(area=la).astype(float).values).all():
            continue
        panel = _series(weeks, ds.sel(area=la), measure, area_name(cube, la), LA_COLOUR) * _series(
            weeks, ds.sel(area=refdata.ENGLAND_CODE), measure, "England", ENGLAND_COLOUR, "dashed"
        )
        panels.append(
            _style(panel, title=f"{breakdown.replace('_', ' ')} {cat}", show_legend=False)
        )
    grid = hv.Layout(panels).cols(4)
    return _finish_layout(
        grid,
        cube,
        safe,
        f"{measure_label(node, measure)} by {breakdown.replace('_', ' ')}: "
        f"{area_name(cube, la)} (red) and England (black, dashed)",
        "Week",
        measure_label(node, measure),
    )


def _finish_layout(layout, cube, safe, title: str, xlabel: str, ylabel: str):
    """Small multiples: shared labels and sizes per panel; the caption under the last panel."""
    cap = caption_text(cube, safe, "Shaded bands: 95% confidence intervals.")
    items = list(layout.data.values())
    for panel in items:
        _style(
            panel,
            xlabel=xlabel,
            ylabel=ylabel,
            xrotation=30,
            bokeh={"width": 260, "height": 200},
            mpl={"fig_inches": (3, 2), "aspect": 1.5},
        )
    _style(items[-1], bokeh={"hooks": [_bokeh_caption(cap)]}, mpl={"hooks": [_mpl_caption(cap)]})
    return layout.opts(title=_titled(cube, safe, title), backend="bokeh").opts(
        title=_titled(cube, safe, title), backend="matplotlib"
    )


def ltla_values(cube: xr.DataTree, measure: str, period=None):
    """(LTLA frame of value/lower/upper/name, England dataset, Period) for one period."""
    total = cube["total"].to_dataset()
    per = resolve_period(total, period)
    ds = select_period(total, per, measure)
    ltla = ds.isel(area=np.flatnonzero(as_str(ds["area_type"].values) == "ltla"))
    v, lo, hi = _values(ltla, measure)
    frame = {
        "la_code": as_str(ltla["area"].values),
        "la_name": as_str(ltla["area_name"].values),
        measure: v,
        "lower": lo,
        "upper": hi,
    }
    return frame, ds.sel(area=refdata.ENGLAND_CODE), per


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
    order = np.argsort(frame[measure], kind="stable")
    order = order[~np.isnan(frame[measure][order])]
    data = {k: np.asarray(v)[order] for k, v in frame.items()}
    data["rank"] = np.arange(1, order.size + 1)
    ydim = hv.Dimension(measure, label=measure_label(cube["total"], measure))
    points = _style(
        hv.Scatter(data, "rank", [ydim, "la_code", "la_name"]),
        color=OTHER_COLOUR,
        bokeh={"size": 4, "tools": ["hover"]},
        mpl={"s": 6},
    )
    bars = _style(
        hv.Segments(
            (data["rank"], data["lower"], data["rank"], data["upper"]), ["rank", ydim, "x1", "y1"]
        ),
        color=OTHER_COLOUR,
        alpha=0.5,
    )
    layers = [
        bars,
        points,
        _style(_dash(hv.HLine(float(england[measure])), "dashed"), color=ENGLAND_COLOUR),
    ]
    if highlight is not None:
        check_la(cube, highlight)
        sel = data["la_code"] == highlight
        layers.append(
            _style(
                hv.Scatter(
                    {k: v[sel] for k, v in data.items()},
                    "rank",
                    [ydim, "la_code", "la_name"],
                    label=area_name(cube, highlight),
                ),
                color=LA_COLOUR,
                bokeh={"size": 10},
                mpl={"s": 40},
            )
        )
    missing = frame[measure].size - order.size
    note = f" ({missing} suppressed LAs not shown)" if missing else ""
    title = _titled(
        cube,
        safe,
        f"{measure_label(cube['total'], measure)}, {per.label}: {order.size} LAs ranked{note}",
    )
    return finish(
        hv.Overlay(layers),
        title,
        caption_text(cube, safe, "Bars: 95% confidence intervals. Dashed line: England."),
        "LA rank (1 = lowest)",
        measure_label(cube["total"], measure),
        xrotation=0,
    )


FUNNEL_BASIS = {  # measure -> (x-axis count, statistic, England average num/den, multiplier)
    "positivity_pct": ("people_tested", "proportion", ("people_positive", "people_tested"), 100),
    "case_rate_per_100k": ("people_positive", "rate", ("people_positive", "population"), 1e5),
    "testing_rate_per_100k": ("people_tested", "rate", ("people_tested", "population"), 1e5),
}


def funnel_lines(size: np.ndarray, average: float, statistic: str, multiplier: float):
    """Control limits (95%: 2s, 99.8%: 3s) on a size grid, via stats.funnel_limits."""
    return stats.funnel_limits(size, average, statistic=statistic, multiplier=multiplier)


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
    frame, england, per = ltla_values(cube, measure, period)
    total = select_period(cube["total"].to_dataset(), per, measure)
    x = total[xname].isel(area=np.flatnonzero(as_str(total["area_type"].values) == "ltla"))
    x = x.astype(float).values
    average = float(england[num]) / float(england[den])
    grid = np.geomspace(max(np.nanmin(x), 1), np.nanmax(x) * 1.05, 200)
    lims = funnel_lines(grid, average, statistic, mult)
    ydim = hv.Dimension(measure, label=measure_label(cube["total"], measure))
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
    layers.append(_style(hv.HLine(average * mult), color=ENGLAND_COLOUR))
    pts = {
        xname: x,
        measure: frame[measure],
        "la_code": frame["la_code"],
        "la_name": frame["la_name"],
    }
    layers.append(
        _style(
            hv.Scatter(pts, xname, [ydim, "la_code", "la_name"]),
            color=OTHER_COLOUR,
            bokeh={"size": 5, "tools": ["hover"]},
            mpl={"s": 8},
        )
    )
    if highlight is not None:
        check_la(cube, highlight)
        sel = pts["la_code"] == highlight
        layers.append(
            _style(
                hv.Scatter(
                    {k: v[sel] for k, v in pts.items()},
                    xname,
                    [ydim, "la_code", "la_name"],
                    label=area_name(cube, highlight),
                ),
                color=LA_COLOUR,
                bokeh={"size": 10},
                mpl={"s": 40},
            )
        )
    title = _titled(
        cube, safe, f"Funnel plot of {measure_label(cube['total'], measure)}, {per.label}"
    )
    return finish(
        _style(hv.Overlay(layers), logx=True),
        title,
        caption_text(
            cube,
            safe,
            "Solid line: England. Control limits around England: 95% dashed, 99.8% dotted.",
        ),
        f"{measure_label(cube['total'], xname)}",
        measure_label(cube["total"], measure),
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

    The SII line runs across the ridit scale, drawn from decile 0.5 to 10.5. The
    default measure is positivity: the cube has no IMD-decile denominators for rates.
    """
    check_la(cube, la)
    node = cube["imd_decile"].to_dataset()
    per = resolve_period(node, period)
    ds = select_period(node, per, measure).sel(area=la, imd_decile=[str(d) for d in range(1, 11)])
    v, lo, hi = _values(ds, measure)
    ydim = hv.Dimension(measure, label=measure_label(node, measure))
    x = np.arange(1, 11)
    y0, y1 = sii_line(cube, la, measure, per, ds)
    layers = [
        _style(hv.Segments((x, lo, x, hi), ["imd_decile", ydim, "x1", "y1"]), color=LA_COLOUR),
        _style(
            hv.Scatter((x, v), "imd_decile", ydim, label=area_name(cube, la)),
            color=LA_COLOUR,
            bokeh={"size": 8, "tools": ["hover"]},
            mpl={"s": 30},
        ),
        _style(
            _dash(
                hv.Curve(([0.5, 10.5], [y0, y1]), "imd_decile", ydim, label=f"SII {y1 - y0:.3g}"),
                "dashed",
            ),
            color=ENGLAND_COLOUR,
        ),
    ]
    title = _titled(
        cube,
        safe,
        f"{measure_label(node, measure)} by IMD 2019 decile: {area_name(cube, la)}, {per.label}",
    )
    return finish(
        hv.Overlay(layers),
        title,
        caption_text(
            cube, safe, "Bars: 95% confidence intervals. Dashed: slope index of inequality."
        ),
        "IMD 2019 decile (1 = most deprived 10%)",
        measure_label(node, measure),
        xrotation=0,
    )


def neighbours(
    cube: xr.DataTree, la: str, measure: str = "case_rate_per_100k", safe: bool | None = None
):
    """Small multiples of an LA and its 15 statistical neighbours over weeks, with England.

    Panel titles are area names; the LA's own panel comes first, drawn in its colour.
    """
    check_la(cube, la)
    codes = [la] + [
        c for c in as_str(cube["/"].to_dataset()["neighbours"].sel(area=la).values) if c
    ]
    total = cube["total"].to_dataset()
    weeks = total["week"].values
    england = _series(
        weeks, total.sel(area=refdata.ENGLAND_CODE), measure, "England", ENGLAND_COLOUR, "dashed"
    )
    panels = [
        _style(
            _series(
                weeks,
                total.sel(area=code),
                measure,
                area_name(cube, code),
                LA_COLOUR if code == la else REGION_COLOUR,
            )
            * england,
            title=area_name(cube, code),
            show_legend=False,
        )
        for code in codes
    ]
    layout = hv.Layout(panels).cols(4)
    return _finish_layout(
        layout,
        cube,
        safe,
        f"{measure_label(total, measure)}: {area_name(cube, la)} and its "
        "statistical neighbours (England dashed)",
        "Week",
        measure_label(total, measure),
    )


# --- writing -----------------------------------------------------------------------------


def save_html(obj, path) -> None:
    """Self-contained HTML: pure bokeh with JS/CSS inlined (SRS desktops have no CDN).

    bokeh's own file_html rather than hv.save, whose panel template links CDN assets.
    """
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    html = file_html(hv.render(obj, backend="bokeh"), INLINE, title=_plain_title(obj))
    # panel (imported by holoviews) registers a relative-path ES-module shim that would
    # 404 offline; these plots use no ES modules, so the tag is dropped.
    html = re.sub(r'<script src="static/[^"]*"></script>\n?', "", html)
    Path(path).write_text(html, encoding="utf-8")


def save_png(obj, path) -> None:
    """PNG through the matplotlib backend (no browser needed)."""
    import warnings

    with warnings.catch_warnings():  # matplotlib's fmt-vs-linestyle note on dashed curves
        warnings.filterwarnings("ignore", message="linestyle is redundantly defined")
        hv.save(obj, str(path), backend="matplotlib", fmt="png", dpi=100)


def _plain_title(obj) -> str:
    opts = hv.Store.lookup_options("bokeh", obj, "plot").kwargs
    return str(opts.get("title") or "lds-dask plot")


from lds_dask.plots_maps import bivariate_map, choropleth, hexmap  # noqa: E402, F401
