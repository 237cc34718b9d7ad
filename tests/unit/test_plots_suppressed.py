"""Plots of fully suppressed selections: a blank plot saying so, never an IndexError."""

from __future__ import annotations

import sys
from pathlib import Path

import holoviews as hv
import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cube_fixture import LSOA_LAS, make_fake_cube  # noqa: E402

from lds_dask.outputs.plots import figures as plots  # noqa: E402
from lds_dask.outputs.plots import maps as plots_maps
from lds_dask.outputs.plots.base import ALL_SUPPRESSED  # noqa: E402

LA = LSOA_LAS[0]  # Hartlepool: a small LA that also has LSOAs in the fixture


def suppress(tree: xr.DataTree, areas: list[str] | None) -> xr.DataTree:
    """Every measure of `areas` (all areas when None) suppressed: NaN values, status 1,
    empty labels; the LSOAs of those areas too."""
    nodes = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        dim = "lsoa" if node.name == "lsoa" else "area"
        if dim in ds.dims:
            codes = node.to_dataset()["la_code" if dim == "lsoa" else "area"]  # area: inherited
            hit = xr.ones_like(codes, dtype=bool) if areas is None else codes.isin(areas)
            ds = ds.assign({k: _blank(v, hit) for k, v in ds.data_vars.items() if dim in v.dims})
        nodes[node.path] = ds
    return xr.DataTree.from_dict(nodes)


def _blank(var: xr.DataArray, hit: xr.DataArray) -> xr.DataArray:
    if var.name.endswith("_status"):
        return var.where(~hit, 1).astype(np.int8)
    if var.dtype.kind in "OUS":
        return var.where(~hit, "")
    return var.astype(float).where(~hit)


@pytest.fixture(scope="module")
def cube():
    return suppress(make_fake_cube(weeks=4, seed=4, with_status=True), [LA])


@pytest.fixture(scope="module")
def everything_suppressed():
    return suppress(make_fake_cube(weeks=3, seed=5, with_status=True), None)


def title(obj) -> str:
    return hv.Store.lookup_options("bokeh", obj, "plot").kwargs["title"]


def elements(obj, kind):
    return [e for e in obj.traverse(lambda x: x, [kind]) if type(e) is kind]


def caption(obj) -> str:
    """The caption drawn under a single-figure plot, rendered with bokeh (where the old
    IndexError and NaN-range failures surfaced)."""
    fig = hv.render(obj, backend="bokeh")
    return " ".join(t.text for t in fig.below if hasattr(t, "text"))


def test_fixture_suppresses_the_la_in_every_node(cube):
    total = cube["total"].to_dataset().sel(area=LA)
    assert np.isnan(total["case_rate_per_100k"].values).all()
    assert (total["people_positive_status"].values == 1).all()
    assert plots.is_disclosure_controlled(cube)


@pytest.mark.parametrize(
    "plot",
    [
        lambda c: plots.breakdown_trend(c, LA, "age_band", safe=True),
        lambda c: plots.breakdown_trend(c, LA, "ethnicity", safe=True),
        lambda c: plots.inequality(c, LA, safe=True),
    ],
    ids=["breakdown_age_band", "breakdown_ethnicity", "inequality"],
)
def test_la_plots_of_a_suppressed_la_are_blank_and_say_so(cube, plot):
    obj = plot(cube)
    assert ALL_SUPPRESSED in caption(obj)
    assert ALL_SUPPRESSED.lower() in title(obj) and plots.SAFE_LABEL in title(obj)
    assert [t.text for t in elements(obj, hv.Text)] == [ALL_SUPPRESSED]


def test_trend_notes_the_suppressed_la_and_still_shows_region(cube):
    obj = plots.trend(cube, LA, safe=True)
    assert f"Hartlepool: {ALL_SUPPRESSED.lower()}" in caption(obj)
    curves = {c.label: c.dimension_values(1) for c in elements(obj, hv.Curve)}
    assert np.isnan(curves["Hartlepool"]).all() and np.isfinite(curves["England"]).all()


def test_neighbours_marks_the_suppressed_panel(cube):
    obj = plots.neighbours(cube, LA, safe=True)
    hv.render(obj, backend="bokeh")
    first = list(obj.data.values())[0]
    assert title(first) == f"Hartlepool ({ALL_SUPPRESSED.lower()})"


@pytest.mark.parametrize("plot", ["caterpillar", "funnel", "hexmap", "choropleth"])
def test_comparisons_render_without_the_suppressed_la(cube, plot):
    obj = getattr(plots, plot)(cube, highlight=LA, safe=True)
    assert ALL_SUPPRESSED not in caption(obj)


@pytest.mark.parametrize(
    "plot",
    [
        lambda c: plots.trend(c, LA, safe=True),
        lambda c: plots.caterpillar(c, highlight=LA, safe=True),
        lambda c: plots.funnel(c, highlight=LA, safe=True),
        lambda c: plots.breakdown_trend(c, LA, "sex", safe=True),
    ],
    ids=["trend", "caterpillar", "funnel", "breakdown_sex"],
)
def test_everything_suppressed_gives_blank_plots(everything_suppressed, plot):
    obj = plot(everything_suppressed)
    assert ALL_SUPPRESSED in caption(obj) and ALL_SUPPRESSED.lower() in title(obj)


def test_neighbours_of_everything_suppressed_renders(everything_suppressed):
    obj = plots.neighbours(everything_suppressed, LA, safe=True)
    hv.render(obj, backend="bokeh")
    assert all(ALL_SUPPRESSED.lower() in title(p) for p in obj.data.values())


@pytest.mark.parametrize("plot", ["hexmap", "choropleth"])
def test_maps_of_everything_suppressed_are_grey_with_a_note(everything_suppressed, plot):
    obj = getattr(plots, plot)(everything_suppressed, highlight=LA, safe=True)
    assert ALL_SUPPRESSED in caption(obj)
    polys = obj.traverse(lambda x: x, [hv.Polygons])[0]
    assert np.isnan(polys.dimension_values(2, expanded=False).astype(float)).all()


def test_bivariate_classes_of_everything_suppressed(everything_suppressed):
    lsoa = everything_suppressed["lsoa"].to_dataset()
    pos_class, _, breaks = plots_maps.bivariate_classes(lsoa, "wave_2")
    assert (pos_class == -1).all() and np.isnan(breaks).all()


def test_blank_plot_saves_as_png_and_html(cube, tmp_path):
    obj = plots.breakdown_trend(cube, LA, "age_band", safe=True)
    plots.save_html(obj, tmp_path / "b.html")
    plots.save_png(obj, tmp_path / "b.png")
    assert ALL_SUPPRESSED in (tmp_path / "b.html").read_text(encoding="utf-8")
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
