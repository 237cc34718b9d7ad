"""Shared pieces of the plot modules: palette, views, labels, captions, periods, saving.

Every plot of :mod:`lds_dask.outputs.plots.figures` (and :mod:`lds_dask.outputs.plots.compare`,
:mod:`lds_dask.outputs.plots.maps`) is a HoloViews object with a title, axis labels with units and
a caption (the view, then the OGL attribution) drawn below it in both backends. Options are
set for bokeh (HTML) and matplotlib (PNG). A selection whose values are all NaN (e.g. a
small LA in the disclosure-controlled view) gives :func:`empty_plot`, not an error.
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

from lds_dask.contract import refdata

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
ALL_SUPPRESSED = "All values suppressed for this selection"
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
            "pass lds_dask.sdc.rules.safe_view(cube, rules)"
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
        plot.handles["axis"].annotate(
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


def _style(el, bokeh: dict | None = None, mpl: dict | None = None, **common):
    """Apply options valid in both backends plus backend-specific ones."""
    el = el.opts(**common, **(bokeh or {}), backend="bokeh")
    return el.opts(**common, **(mpl or {}), backend="matplotlib")


def _dash(el, style: str):
    return _style(
        el, bokeh={"line_dash": style}, mpl={"linestyle": "--" if style == "dashed" else ":"}
    )


def has_values(*arrays) -> bool:
    """True when any of the arrays holds a finite number (False for all-NaN/suppressed)."""
    return any(np.isfinite(np.asarray(a, dtype=float)).any() for a in arrays)


def empty_plot(cube: xr.DataTree, safe: bool | None, title: str, note: str = ""):
    """A blank plot saying every value is suppressed, titled and captioned like the rest."""
    text = _style(hv.Text(0.5, 0.5, ALL_SUPPRESSED, fontsize=14), color=OTHER_COLOUR)
    return finish(
        _style(text, xaxis=None, yaxis=None, xlim=(0, 1), ylim=(0, 1)),
        _titled(cube, safe, f"{title}: {ALL_SUPPRESSED.lower()}"),
        caption_text(cube, safe, " ".join(filter(None, [ALL_SUPPRESSED + ".", note]))),
    )


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
    """Rates and positivity (with 95% CIs) from summed counts, by the cube's own definition."""
    from lds_dask.cube.measures import derive_rate_measures

    out = derive_rate_measures(ds)
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
    v = np.asarray(ds[measure].values, dtype=float)
    limits = [
        np.asarray(ds[f"{measure}{s}"].values, dtype=float)
        if f"{measure}{s}" in ds
        else np.full_like(v, np.nan)
        for s in ("_lower", "_upper")
    ]
    return v, *limits


# --- weekly series and small multiples ---------------------------------------------------


def _finite_range(*arrays) -> tuple:
    """(min, max) over the finite values of the arrays, padded by 5% of the span as the
    renderer pads data ranges; (None, None) when there are none."""
    values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    if not values.size:
        return (None, None)
    lo, hi = float(values.min()), float(values.max())
    pad = 0.05 * (hi - lo)
    return (lo - pad, hi + pad)


def _series(weeks, ds, measure: str, label: str, colour: str, dash: str | None = None):
    """A measure's curve over weeks with its 95% CI ribbon (the ribbon has no legend)."""
    v, lo, hi = _values(ds, measure)
    # Ranges set here spare the renderer a scan of every element (slow in small multiples).
    yrange = _finite_range(v, lo, hi)
    ydim = hv.Dimension(measure, label=measure_label(ds, measure), range=yrange)
    xdim = hv.Dimension("week", range=(weeks[0], weeks[-1]))
    ribbon = _style(
        hv.Area((weeks, lo, hi), xdim, [ydim, hv.Dimension(f"{measure}_upper", range=yrange)]),
        alpha=0.15,
        bokeh={"color": colour, "line_alpha": 0},
        mpl={"color": colour, "facecolor": colour, "linewidth": 0},
    )
    curve = _style(hv.Curve((weeks, v), xdim, ydim, label=label), color=colour)
    return ribbon * (_dash(curve, dash) if dash else curve)


def _finish_layout(layout, cube, safe, title: str, xlabel: str, ylabel: str):
    """Small multiples: shared labels and sizes per panel; the caption under the last panel.

    An empty layout (every panel suppressed) becomes :func:`empty_plot`.
    """
    items = list(layout.data.values())
    if not items:
        return empty_plot(cube, safe, title)
    cap = caption_text(cube, safe, "Shaded bands: 95% confidence intervals.")
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
