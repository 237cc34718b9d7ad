"""Comparison plots of a profile cube (HoloViews objects, bokeh and matplotlib backends).

Every function takes a cube (``xarray.DataTree`` following docs/architecture.md) or its
disclosure-controlled view, and returns a HoloViews object carrying a title, axis labels
with units, and a caption (the view, then the OGL attribution) drawn below the plot in
both backends. Which view a plot shows is read from the data (``<measure>_status``
variables mark the disclosure-controlled view) and written into the title and caption;
``safe=True`` refuses an unsuppressed cube. Colours are Okabe-Ito (colour-blind safe).
A selection whose values are all suppressed (NaN) gives a blank plot saying so
(:func:`empty_plot`), never an error.

Periods: ``None`` is the last week; a single week (``"2020-11-02"``) is that week; a
``(start, end)`` pair (inclusive) sums counts over those weeks and recomputes rates
(over the whole period, not per week) and their CIs. Measures that cannot be recomputed
from counts (DSR, survey prevalence) accept single weeks only. Cells suppressed in any
week of a range stay suppressed (NaN) in the range.

This module holds the weekly trends; shared pieces live in :mod:`lds_dask.outputs.plots.base`,
LA comparisons (``caterpillar``, ``funnel``, ``inequality``, ``neighbours``) in
:mod:`lds_dask.outputs.plots.compare` and maps (``hexmap``, ``choropleth``, ``bivariate_map``) in
:mod:`lds_dask.outputs.plots.maps`; all are re-exported here. :func:`save_html` /
:func:`save_png` write any of these objects.
"""

from __future__ import annotations

import sys

# re, textwrap, Path, dataclass, holoviews and stats are unused here but were attributes
# of this module before the split; kept so `plots.<name>` still resolves for callers.
import re  # noqa: F401
import textwrap  # noqa: F401
from dataclasses import dataclass  # noqa: F401
from pathlib import Path  # noqa: F401

import holoviews  # noqa: F401
import holoviews as hv
import numpy as np
import xarray as xr

from lds_dask.contract import refdata

from lds_dask.cube import stats  # noqa: F401
from lds_dask.outputs.plots.base import (  # noqa: F401  (re-exported: the public plots API)
    ALL_SUPPRESSED,
    BOKEH_SIZE,
    COUNTS,
    ENGLAND_COLOUR,
    LA_COLOUR,
    OKABE_ITO,
    OTHER_COLOUR,
    RECOMPUTABLE,
    REGION_COLOUR,
    SAFE_LABEL,
    SEQUENTIAL_CMAP,
    UNSAFE_LABEL,
    Period,
    _bokeh_caption,
    _dash,
    _finish_layout,
    _mpl_caption,
    _plain_title,
    _recompute,
    _series,
    _style,
    _titled,
    _values,
    area_name,
    as_str,
    caption_lines,
    caption_text,
    check_la,
    empty_plot,
    finish,
    has_values,
    is_disclosure_controlled,
    measure_label,
    resolve_period,
    save_html,
    save_png,
    select_period,
    view_label,
)
from lds_dask.outputs.plots.compare import (  # noqa: F401
    FUNNEL_BASIS,
    caterpillar,
    funnel,
    funnel_lines,
    inequality,
    ltla_values,
    neighbours,
    sii_line,
)


def restriction_marks(weeks: np.ndarray, y: float) -> list:
    """Dotted lines (one hv.VLines) and labels (one hv.Labels, vdim ``event``, staggered
    down from `y`) at the national restriction dates within the weeks shown; empty when
    there are none. Two elements rather than two per date: far cheaper to render."""
    end = weeks[-1] + np.timedelta64(6, "D")
    rows = [
        (np.datetime64(date, "ns"), f" {event}")
        for date, event in refdata.restrictions().iter_rows()
        if weeks[0] <= np.datetime64(date, "ns") <= end
    ]
    if not rows:
        return []
    when = np.array([r[0] for r in rows], dtype="datetime64[ns]")
    green = OKABE_ITO["green"]
    lines = _style(_dash(hv.VLines(when, "week"), "dotted"), color=green)
    heights = y * (1 - 0.06 * (np.arange(when.size) % 4))  # staggered: close dates overlap
    labels = hv.Labels((when, heights, [r[1] for r in rows]), ["week", "y"], "event")
    return [
        lines,
        _style(
            labels,
            bokeh={
                "text_align": "left",
                "text_baseline": "top",
                "text_font_size": "8pt",
                "text_color": green,
            },
            mpl={
                "horizontalalignment": "left",
                "verticalalignment": "top",
                "size": 8,
                "color": green,
            },
        ),
    ]


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
    codes = [refdata.ENGLAND_CODE, region, la]
    sub = total[[m for m in (measure, f"{measure}_lower", f"{measure}_upper") if m in total]]
    sub = sub.sel(area=codes)
    label = measure_label(total, measure)
    title = f"{label}: {area_name(cube, la)}, {area_name(cube, region)} and England"
    if not has_values(sub.to_array().values):
        return empty_plot(cube, safe, title)
    weeks = total["week"].values
    styles = (("dashed", ENGLAND_COLOUR), (None, REGION_COLOUR), (None, LA_COLOUR))
    layers = [
        _series(weeks, sub.sel(area=code), measure, area_name(cube, code), colour, dash)
        for code, (dash, colour) in zip(codes, styles, strict=True)
    ]
    top = float(np.nanmax(sub.to_array().values))
    note = "Shaded bands: 95% confidence intervals."
    if not has_values(sub[measure].sel(area=la)):
        note += f" {area_name(cube, la)}: {ALL_SUPPRESSED.lower()}."
    return finish(
        hv.Overlay(layers + restriction_marks(weeks, top)).opts(
            legend_position="top_left", backend="bokeh"
        ),
        _titled(cube, safe, title),
        caption_text(cube, safe, note),
        "Week (ISO week starting Monday)",
        label,
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
    imd_quintile, ahah_quintile). Categories with no values for the LA are left out;
    when none has any, the plot is blank and says so.
    """
    check_la(cube, la)
    node = cube[breakdown].to_dataset()
    keep = [m for m in (measure, f"{measure}_lower", f"{measure}_upper") if m in node]
    sub = node[keep].sel(area=[la, refdata.ENGLAND_CODE])
    weeks = node["week"].values
    name = area_name(cube, la)
    panels = []
    for cat in node[breakdown].values:
        ds = sub.sel({breakdown: cat})
        if not has_values(ds[measure].sel(area=la)):
            continue
        panel = _series(weeks, ds.sel(area=la), measure, name, LA_COLOUR) * _series(
            weeks, ds.sel(area=refdata.ENGLAND_CODE), measure, "England", ENGLAND_COLOUR, "dashed"
        )
        panels.append(
            _style(panel, title=f"{breakdown.replace('_', ' ')} {cat}", show_legend=False)
        )
    return _finish_layout(
        hv.Layout(panels).cols(4),
        cube,
        safe,
        f"{measure_label(node, measure)} by {breakdown.replace('_', ' ')}: "
        f"{name} (red) and England (black, dashed)",
        "Week",
        measure_label(node, measure),
    )


from lds_dask.outputs.plots.maps import bivariate_map, choropleth, hex_polygons, hexmap  # noqa: E402, F401


# The nodes la_plots reads (/age_band, /ethnicity, /imd_decile for the LA's breakdowns and
# inequality; /lsoa for the bivariate map). Each node's safe view depends only on nodes of
# fewer dims (its margins), so this subset gives the same safe values as the whole cube.
PLOT_NODES = ("total", "age_band", "ethnicity", "imd_decile", "inequality", "lsoa")


def la_plots(cube, la: str, safe: bool = False) -> dict:
    """Every plot for one LA, by file stem. The bivariate map is left out (with a note on
    stderr) when the optional LSOA polygons are not installed or the LA has no LSOAs."""
    out = {
        "trend": trend(cube, la, safe=safe),
        "breakdown_age_band": breakdown_trend(cube, la, "age_band", safe=safe),
        "breakdown_ethnicity": breakdown_trend(cube, la, "ethnicity", safe=safe),
        "caterpillar": caterpillar(cube, highlight=la, safe=safe),
        "funnel": funnel(cube, highlight=la, safe=safe),
        "hexmap": hexmap(cube, highlight=la, safe=safe),
        "choropleth": choropleth(cube, highlight=la, safe=safe),
        "inequality": inequality(cube, la, safe=safe),
        "neighbours": neighbours(cube, la, safe=safe),
    }
    try:
        out["bivariate_map"] = bivariate_map(cube, la, safe=safe)
    except (ImportError, ValueError, KeyError) as exc:
        print(f"bivariate_map skipped: {exc}", file=sys.stderr)
    return out
