"""Bokeh figures shared by the explorer and the report pack, filled in place from numpy.

Colours are Okabe-Ito (colour-blind safe). Figures are built once and their data sources
updated, rather than re-rendered, so the explorer redraws quickly.
"""

from __future__ import annotations

import numpy as np

from lds_dask.contract import refdata
from lds_dask.outputs.views.data import MEASURES, CubeArrays, ranked_data, series, series_all, trend_data

COLOURS = {"la": "#0072B2", "region": "#E69F00", "england": "#000000"}  # Okabe-Ito


def _figure(title: str, name: str, **kwargs):
    from bokeh.plotting import figure

    opts = {
        "height": 300,
        "sizing_mode": "stretch_width",
        "toolbar_location": "above",
        "tools": "pan,wheel_zoom,box_zoom,reset,save",
    } | kwargs
    return figure(title=title, name=name, **opts)


def make_trend_figure():
    """LA vs region vs England over weeks, with 95% CI ribbons and a marker at the period."""
    from bokeh.models import ColumnDataSource, Span

    cols = [f"{a}{s}" for a in COLOURS for s in ("", "_lo", "_hi")]
    src = ColumnDataSource({"week": [], **{c: [] for c in cols}}, name="trend-source")
    fig = _figure("Trend", "trend-figure", x_axis_type="datetime")
    for key, colour in COLOURS.items():
        if key != "england":
            fig.varea(
                "week", f"{key}_lo", f"{key}_hi", source=src, fill_color=colour, fill_alpha=0.2
            )
        fig.line(
            "week",
            key,
            source=src,
            color=colour,
            line_width=2,
            legend_label={"la": "LA", "region": "Region", "england": "England"}[key],
        )
    span = Span(dimension="height", line_dash="dashed", line_color="#777777", name="trend-period")
    fig.add_layout(span)
    fig.legend.location = "top_left"
    fig.xaxis.axis_label = "Week (ISO week starting Monday)"
    return fig, src, span


def make_breakdown_figure():
    """One line per category of the chosen breakdown, for the chosen LA."""
    from bokeh.models import ColumnDataSource

    src = ColumnDataSource({"xs": [], "ys": [], "colour": [], "label": []}, name="breakdown-source")
    fig = _figure("Breakdown", "breakdown-figure", x_axis_type="datetime")
    fig.multi_line("xs", "ys", source=src, line_color="colour", line_width=2, legend_field="label")
    fig.add_layout(fig.legend[0], "right")
    fig.xaxis.axis_label = "Week (ISO week starting Monday)"
    return fig, src


def make_caterpillar_figure():
    """All LTLAs ranked for the period with CIs, the England line and the LA highlighted."""
    from bokeh.models import ColumnDataSource, HoverTool, Span

    cols = ["rank", "value", "lower", "upper", "code", "name"]
    src = ColumnDataSource({c: [] for c in cols}, name="caterpillar-source")
    mark = ColumnDataSource({c: [] for c in cols}, name="caterpillar-highlight")
    fig = _figure("Caterpillar", "caterpillar-figure", height=450)
    fig.segment("rank", "lower", "rank", "upper", source=src, color="#999999")
    dots = fig.scatter("rank", "value", source=src, size=3, color="#56B4E9")
    fig.segment("rank", "lower", "rank", "upper", source=mark, color="#D55E00", line_width=3)
    fig.scatter("rank", "value", source=mark, size=10, color="#D55E00")
    span = Span(dimension="width", line_color="#000000", line_dash="dashed", name="england-line")
    fig.add_layout(span)
    fig.add_tools(
        HoverTool(renderers=[dots], tooltips=[("LA", "@name (@code)"), ("value", "@value{0,0.0}")])
    )
    fig.xaxis.axis_label = "Rank of 309 LAs (1 = lowest)"
    return fig, src, mark, span


def hex_axial(q: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HexJSON odd-r offsets (r upwards) to Bokeh axial coordinates (pointy top, r down)."""
    return q + (r + (r & 1)) // 2, -r


def make_hex_figure(cube: CubeArrays):
    """The 309-LA hex cartogram coloured by the measure; clicking a hex selects its LA."""
    from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper, TapTool
    from bokeh.palettes import Viridis256

    hexes = refdata.hexmap()
    q, r = hex_axial(hexes["q"].to_numpy(), hexes["r"].to_numpy())
    base = {"q": q, "r": r, "code": hexes["la_code"].to_list(), "name": hexes["la_name"].to_list()}
    src = ColumnDataSource(base | {"value": np.full(len(q), np.nan)}, name="hex-source")
    mark = ColumnDataSource({"q": [], "r": []}, name="hex-highlight")
    mapper = LinearColorMapper(palette=Viridis256, nan_color="#dddddd")
    fig = _figure("Hex map", "hex-figure", match_aspect=True, height=450)
    fig.tools = [t for t in fig.tools if t.__class__.__name__ != "PanTool"]
    cells = fig.hex_tile(
        "q",
        "r",
        source=src,
        size=1,
        line_color="white",
        fill_color={"field": "value", "transform": mapper},
        nonselection_fill_alpha=1.0,
        selection_line_color="white",
    )
    fig.hex_tile("q", "r", source=mark, size=1, fill_alpha=0, line_color="#D55E00", line_width=4)
    fig.add_tools(
        TapTool(renderers=[cells]),
        HoverTool(
            renderers=[cells], tooltips=[("LA", "@name (@code)"), ("value", "@value{0,0.0}")]
        ),
    )
    fig.axis.visible = fig.grid.visible = False
    return fig, src, mark, mapper


def fill_trend(fig, src, cube: CubeArrays, la: str, measure: str) -> None:
    """Point the trend figure at one LA and measure."""
    i = cube.index[la]
    region = cube.names[cube.index.get(cube.region_code[i], i)]
    src.data, src.tags = trend_data(cube, la, measure), [la]
    fig.title.text = f"{MEASURES[measure]}: {cube.names[i]} vs {region} vs England"
    fig.yaxis.axis_label = MEASURES[measure]


def fill_breakdown(fig, src, cube: CubeArrays, node: str, measure: str, la: str) -> None:
    """One line per category of `node` for the LA; ordered palettes for ordered bands."""
    from bokeh.palettes import Colorblind, Viridis

    cats = cube.nodes[node].categories
    value = series(cube, node, measure, cube.index[la])[0]
    n = len(cats)
    palette = list(Colorblind[max(n, 3)][:n]) if n <= 8 else list(Viridis[n])
    colours = ["#999999" if c.lower() == "unknown" else palette[k] for k, c in enumerate(cats)]
    src.data = {
        "xs": [cube.weeks] * n,
        "ys": [value[:, k] for k in range(n)],
        "colour": colours,
        "label": list(cats),
    }
    src.tags = [la]
    fig.title.text = (
        f"{MEASURES[measure]} by {node.replace('_', ' ')}: {cube.names[cube.index[la]]}"
    )
    fig.yaxis.axis_label = MEASURES[measure]


def fill_caterpillar(views: dict, cube: CubeArrays, measure: str, week: int) -> dict:
    """Rank all LTLAs on the caterpillar; returns its columns (for highlighting)."""
    data = ranked_data(cube, measure, week)
    views["cat_src"].data = data
    views["cat_span"].location = float(
        series_all(cube, measure)[0][cube.index[refdata.ENGLAND_CODE], week]
    )
    views[
        "cat"
    ].title.text = f"{MEASURES[measure]}, week of {cube.week_labels()[week]}: all LAs ranked"
    views["cat"].yaxis.axis_label = MEASURES[measure]
    return data


def highlight_caterpillar(views: dict, ranked: dict, la: str) -> None:
    k = ranked["code"].index(la)
    views["cat_mark"].data = {c: [v[k]] for c, v in ranked.items()}
    views["cat_mark"].tags = [la]


def make_views() -> dict:
    """The trend, breakdown and caterpillar figures with their sources, by name."""
    views = {}
    views["trend"], views["trend_src"], views["trend_span"] = make_trend_figure()
    views["bd"], views["bd_src"] = make_breakdown_figure()
    views["cat"], views["cat_src"], views["cat_mark"], views["cat_span"] = make_caterpillar_figure()
    return views
