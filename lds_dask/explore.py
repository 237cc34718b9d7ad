"""The interactive cube explorer: a Panel app served locally (``lds-dask explore``).

The cube's data is read into numpy once at start (:func:`load_cube_arrays`), and the
views are plain Bokeh figures whose data sources are updated in place. So switching LA
is a few array slices and a small websocket message, well inside the 200 ms budget,
rather than a re-render of HoloViews objects. The view state (la, measure, breakdown,
period) lives in one :class:`ExplorerState`, synced to the URL query so a view can be
shared. JS and CSS are served by the local server, never from a CDN.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import param

from lds_dask import refdata

MEASURES = {  # measure -> label with units; rates carry _lower/_upper 95% CIs
    "case_rate_per_100k": "Case rate per 100,000",
    "positivity_pct": "PCR positivity (%)",
    "testing_rate_per_100k": "People tested per 100,000",
    "people_positive": "People testing positive",
    "people_tested": "People tested",
}
BREAKDOWNS = ["age_band", "sex", "ethnicity", "imd_decile", "imd_quintile", "ahah_quintile"]
NODES = ["total", *BREAKDOWNS, "inequality"]  # what the explorer and report read
COLOURS = {"la": "#0072B2", "region": "#E69F00", "england": "#000000"}  # Okabe-Ito
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


def open_view(path: str | Path, safe: bool):
    """Open the cube's nodes the views need; with ``safe`` only their disclosure-controlled
    view (the suppression of these nodes does not depend on the nodes left out)."""
    import xarray as xr

    full = read_cube(path)
    tree = xr.DataTree.from_dict(
        {
            "/": full.to_dataset(inherit=False),
            **{f"/{n}": full[n].to_dataset(inherit=False) for n in NODES if n in full.children},
        }
    )
    if safe:
        from lds_dask.disclosure import DisclosureRules, safe_view

        tree = safe_view(tree.compute(), DisclosureRules())
    return tree


def read_cube(path: str | Path):
    """lds_dask.cube.open_cube, falling back to a plain read of unconsolidated stores."""
    import warnings

    import xarray as xr

    try:
        from lds_dask.cube import open_cube

        return open_cube(path)
    except (ImportError, ValueError):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Cc]onsolidated.*")
            return xr.open_datatree(path, engine="zarr", consolidated=False)


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


class ExplorerState(param.Parameterized):
    """The shareable view: one LA, one measure, one breakdown, one week (ISO date)."""

    la = param.String(default="")
    measure = param.Selector(default="case_rate_per_100k", objects=list(MEASURES))
    breakdown = param.Selector(default="age_band", objects=BREAKDOWNS)
    period = param.String(default="")


def page_title(cube: CubeArrays, code: str) -> str:
    """Browser title: the LA and whether this is the safe or the NOT FOR RELEASE view."""
    view = "disclosure-controlled (safe)" if cube.safe else "NOT FOR RELEASE"
    return f"{cube.names[cube.index[code]]} ({code}) · lds-dask explorer · {view}"


def find_free_port(address: str = "127.0.0.1") -> int:
    """An unused TCP port on `address` (for ``--port 0``)."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def serve_explorer(
    path: str | Path,
    port: int = 5006,
    address: str = "127.0.0.1",
    safe: bool = False,
    show_url=print,
) -> None:
    """Serve the explorer on http://address:port/ until interrupted; prints its URL."""
    import panel as pn

    cube = load_cube_arrays(open_view(path, safe), safe=safe)
    port = port or find_free_port(address)
    origins = [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    view = "disclosure-controlled (safe)" if safe else "NOT FOR RELEASE"
    server = pn.serve(
        {"/": lambda: Explorer(cube).panel()},
        port=port,
        address=address,
        websocket_origin=origins,
        show=False,
        start=False,
        verbose=False,
        title=f"lds-dask explorer · {view}",
    )
    show_url(f"lds-dask explorer: http://{address}:{port}/", flush=True)
    server.io_loop.start()


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


def fill_caterpillar(views: dict, cube: CubeArrays, measure: str, week: int) -> dict:
    """Rank all LTLAs on the caterpillar; returns its columns (for highlighting)."""
    data = ranked_data(cube, measure, week)
    views["cat_src"].data = data
    views["cat_span"].location = float(
        series_all(cube, measure)[0][cube.index[refdata.ENGLAND_CODE], week]
    )
    views["cat"].title.text = (
        f"{MEASURES[measure]}, week of {cube.week_labels()[week]}: all LAs ranked"
    )
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


class Explorer:
    """One browser session: the state, its widgets and four linked, in-place-updated views."""

    def __init__(self, cube: CubeArrays, state: ExplorerState | None = None):
        import panel as pn

        self.cube, self._index = cube, cube.index
        weeks = cube.week_labels()
        self.state = state or ExplorerState(la=cube.ltla_codes[0], period=weeks[-1])
        self.state.param.breakdown.objects = [b for b in BREAKDOWNS if b in cube.nodes]
        self.la_input = pn.widgets.AutocompleteInput(
            label="Local authority (name or code)",
            case_sensitive=False,
            min_characters=1,
            search_strategy="includes",
            restrict=True,
            options={f"{cube.names[self._index[c]]} ({c})": c for c in cube.ltla_codes},
        )
        self.measure = pn.widgets.Select(
            label="Measure", options={v: k for k, v in MEASURES.items()}
        )
        self.breakdown = pn.widgets.Select(
            label="Breakdown", options=self.state.param.breakdown.objects
        )
        self.period = pn.widgets.Select(label="Week", options=weeks)
        self.heading = pn.pane.HTML(sizing_mode="stretch_width")
        self._build_figures()

    def _build_figures(self) -> None:
        from bokeh.models import CustomJS

        self.views = make_views()
        self.hex, self.hex_src, self.hex_mark, self.hex_mapper = make_hex_figure(self.cube)
        self.hex_src.selected.on_change("indices", self._on_hex_tap)
        # Panel serves with use_for_title=False, so the browser title is set from JS.
        self.views["trend"].js_on_change("tags", CustomJS(code="document.title = cb_obj.tags[0]"))

    def _on_hex_tap(self, attr, old, new) -> None:
        if new:
            self.state.la = self.hex_src.data["code"][new[0]]

    def select_la(self, code: str) -> None:
        """Switch the whole view to LA `code` (what a search, a hex click or the URL does)."""
        self.state.la = code

    def _sync_widgets(self) -> None:
        """Widgets <-> state, both ways; an unknown LA or week from a URL falls back."""
        st, cube = self.state, self.cube
        if st.la not in self._index or cube.area_type[self._index[st.la]] != "ltla":
            st.la = cube.ltla_codes[0]
        if st.period not in self.period.options:
            st.period = self.period.options[-1]
        self.la_input.value, self.measure.value = st.la, st.measure
        self.breakdown.value, self.period.value = st.breakdown, st.period
        for widget, name in (
            (self.la_input, "la"),
            (self.measure, "measure"),
            (self.breakdown, "breakdown"),
            (self.period, "period"),
        ):
            widget.param.watch(lambda e, n=name: e.new and setattr(st, n, e.new), "value")
            st.param.watch(lambda e, w=widget: setattr(w, "value", e.new), name)
        st.param.watch(self._redraw, ["la", "measure", "breakdown", "period"])

    def _redraw(self, *events) -> None:
        """Refresh every view in one batched message (re-rank only when needed)."""
        import panel as pn

        st, cube, v = self.state, self.cube, self.views
        changed = {e.name for e in events} or {"measure"}
        with pn.io.hold():
            fill_trend(v["trend"], v["trend_src"], cube, st.la, st.measure)
            v["trend_span"].location = float(np.datetime64(st.period, "ms").astype(np.int64))
            fill_breakdown(v["bd"], v["bd_src"], cube, st.breakdown, st.measure, st.la)
            if changed & {"measure", "period"}:
                self._ranked = fill_caterpillar(v, cube, st.measure, self._week())
                self._colour_hexes()
            highlight_caterpillar(v, self._ranked, st.la)
            h = self.hex_src.data["code"].index(st.la)
            self.hex_mark.data = {
                "q": [self.hex_src.data["q"][h]],
                "r": [self.hex_src.data["r"][h]],
            }
            self._draw_heading()

    def _week(self) -> int:
        return self.cube.week_labels().index(self.state.period)

    def _colour_hexes(self) -> None:
        st = self.state
        value = series_all(self.cube, st.measure)[0][:, self._week()]
        hex_values = value[[self._index[c] for c in self.hex_src.data["code"]]]
        self.hex_src.patch({"value": [(slice(len(hex_values)), hex_values)]})
        finite = hex_values[np.isfinite(hex_values)]
        if finite.size:
            self.hex_mapper.update(low=float(finite.min()), high=float(finite.max()))
        self.hex.title.text = f"{MEASURES[st.measure]}, week of {st.period} (click a hex)"

    def _draw_heading(self) -> None:
        import html

        st, cube = self.state, self.cube
        name = html.escape(cube.names[self._index[st.la]])
        view, text = ("safe", SAFE_TEXT) if cube.safe else ("unsafe", UNSAFE_TEXT)
        colour = "#0b6e4f" if cube.safe else "#b00020"
        self.heading.object = (
            f'<h1 id="explorer-heading" data-la="{st.la}" data-view="{view}" '
            f'style="margin:0">{name} ({st.la})</h1>'
            f'<p id="view-banner" data-view="{view}" style="color:white;background:{colour};'
            f'padding:4px 8px;font-weight:bold">{text}</p>'
        )
        self.views["trend"].tags = [page_title(cube, st.la)]  # -> document.title

    def _retitle(self) -> None:
        """Once the browser is connected, push the title again so the JS callback fires."""
        self.views["trend"].tags = []
        self.views["trend"].tags = [page_title(self.cube, self.state.la)]

    def panel(self):
        """The served page: controls on the left, views in a grid; URL query kept in sync."""
        import panel as pn

        if pn.state.location is not None:
            pn.state.location.sync(
                self.state, {k: k for k in ("la", "measure", "breakdown", "period")}
            )
        self._sync_widgets()
        self._redraw()
        pn.state.onload(self._retitle)
        panes = [
            pn.pane.Bokeh(f, sizing_mode="stretch_width")
            for f in (self.views["trend"], self.views["bd"], self.views["cat"], self.hex)
        ]
        views = pn.Column(
            pn.Row(*panes[:2], sizing_mode="stretch_width"),
            pn.Row(*panes[2:], sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        controls = pn.Column(self.la_input, self.measure, self.breakdown, self.period, width=320)
        caption = pn.pane.HTML(f"<small>{refdata.ATTRIBUTION}</small>")
        return pn.Column(
            self.heading, pn.Row(controls, views), caption, sizing_mode="stretch_width"
        )


def series_all(cube: CubeArrays, measure: str) -> tuple[np.ndarray, ...]:
    """(value, lower, upper) of /total for every area and week."""
    vals = cube.nodes["total"].values
    nan = np.full_like(vals[measure], np.nan)
    return vals[measure], vals.get(f"{measure}_lower", nan), vals.get(f"{measure}_upper", nan)
