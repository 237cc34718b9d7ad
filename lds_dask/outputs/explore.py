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
from pathlib import Path

import numpy as np
import param

from lds_dask.contract import refdata
from lds_dask.outputs.views.data import (
    BREAKDOWNS,
    MEASURES,
    SAFE_TEXT,
    UNSAFE_TEXT,
    CubeArrays,
    load_cube_arrays,
    open_view,
    series_all,
)
from lds_dask.outputs.views.figures import (
    fill_breakdown,
    fill_caterpillar,
    fill_trend,
    highlight_caterpillar,
    make_hex_figure,
    make_views,
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
