"""Plot functions on the fake cube: the right data in the elements, labels, safe mode."""

from __future__ import annotations

import sys
from pathlib import Path

import holoviews as hv
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cube_fixture import make_fake_cube  # noqa: E402

from lds_dask.contract import refdata  # noqa: E402
from lds_dask.outputs.plots import figures as plots

LA = "E06000001"  # Hartlepool, North East


@pytest.fixture(scope="module")
def cube():
    return make_fake_cube(weeks=8, seed=0)


@pytest.fixture(scope="module")
def safe_cube():
    return make_fake_cube(weeks=8, seed=0, with_status=True)


def elements(obj, kind):
    """Elements of exactly this type (hv.Area subclasses hv.Curve)."""
    return [e for e in obj.traverse(lambda x: x, [kind]) if type(e) is kind]


def plot_opts(obj):
    return hv.Store.lookup_options("bokeh", obj, "plot").kwargs


def test_trend_curves_equal_cube_values(cube):
    obj = plots.trend(cube, LA)
    curves = {c.label: c for c in elements(obj, hv.Curve)}
    assert set(curves) == {"Hartlepool", "North East", "England"}
    total = cube["total"].to_dataset()
    for name, code in (
        ("Hartlepool", LA),
        ("North East", "E12000001"),
        ("England", refdata.ENGLAND_CODE),
    ):
        np.testing.assert_allclose(
            curves[name].dimension_values(1), total["case_rate_per_100k"].sel(area=code).values
        )
    ribbon = elements(obj, hv.Area)[-1]
    np.testing.assert_allclose(
        ribbon.dimension_values(2), total["case_rate_per_100k_upper"].sel(area=LA).values
    )


def test_trend_marks_restrictions_in_window(cube):
    obj = plots.trend(cube, LA)
    (labels,) = elements(obj, hv.Labels)  # one element each: cheap to render
    texts = [t.strip() for t in labels.dimension_values("event")]
    assert texts == ["Three-tier system", "Second national lockdown"]
    (lines,) = elements(obj, hv.VLines)
    assert [str(d)[:10] for d in lines.dimension_values(0)] == ["2020-10-14", "2020-11-05"]


def test_labels_title_units_and_view(cube):
    opts = plot_opts(plots.trend(cube, LA))
    assert "Hartlepool" in opts["title"] and plots.UNSAFE_LABEL in opts["title"]
    assert opts["ylabel"] == "Cases per 100,000 (per 100,000 population)"
    assert "Week" in opts["xlabel"]
    assert plots.caption_text(cube).endswith(refdata.ATTRIBUTION)


def test_caption_is_drawn_in_bokeh(cube):
    fig = hv.render(plots.caterpillar(cube), backend="bokeh")
    text = " ".join(t.text for t in fig.below if hasattr(t, "text"))
    assert "Open Government Licence" in text and plots.UNSAFE_LABEL in text


def test_breakdown_trend_panels_match_node(cube):
    obj = plots.breakdown_trend(cube, LA, "age_band")
    panels = list(obj.data.values())
    assert len(panels) == 11  # 10 LDS bands + unknown
    first = [c for c in elements(panels[0], hv.Curve) if c.label == "Hartlepool"][0]
    np.testing.assert_allclose(
        first.dimension_values(1),
        cube["age_band"]["positivity_pct"].sel(area=LA, age_band="0-4").values,
    )


def test_caterpillar_ranks_all_309(cube):
    obj = plots.caterpillar(cube, highlight=LA)
    points, marked = elements(obj, hv.Scatter)
    values = points.dimension_values(1)
    assert len(values) == 309 and np.all(np.diff(values) >= 0)
    assert marked.dimension_values("la_code").tolist() == [LA]
    eng = cube["total"]["case_rate_per_100k"].sel(area=refdata.ENGLAND_CODE).values[-1]
    assert elements(obj, hv.HLine)[0].data == pytest.approx(eng)


def test_period_range_recomputes_rates(cube):
    obj = plots.caterpillar(cube, "positivity_pct", period=("2020-10-05", "2020-10-12"))
    points = elements(obj, hv.Scatter)[0]
    i = points.dimension_values("la_code").tolist().index(LA)
    node = cube["total"].to_dataset().sel(area=LA).isel(week=[0, 1])
    expected = node["people_positive"].sum() / node["people_tested"].sum() * 100
    assert points.dimension_values(1)[i] == pytest.approx(float(expected))
    with pytest.raises(ValueError, match="single week"):
        plots.caterpillar(cube, "case_rate_dsr_per_100k", period=("2020-10-05", "2020-10-12"))


@pytest.mark.parametrize("measure", ["positivity_pct", "case_rate_per_100k"])
def test_funnel_limits_are_monotone(cube, measure):
    obj = plots.funnel(cube, measure)
    lines = {}
    for c in elements(obj, hv.Curve):
        lines.setdefault(c.label, []).append(c.dimension_values(1))
    for lower, upper in lines.values():
        assert np.all(np.diff(lower) >= -1e-9) and np.all(np.diff(upper) <= 1e-9)
        assert np.all(lower <= upper)
    assert set(lines) == {"95% limits", "99.8% limits"}
    assert len(elements(obj, hv.Scatter)[0]) == 309


def test_inequality_points_and_sii_line(cube):
    obj = plots.inequality(cube, LA)
    points = elements(obj, hv.Scatter)[0]
    node = cube["imd_decile"]["positivity_pct"].sel(area=LA).isel(week=-1)
    np.testing.assert_allclose(
        points.dimension_values(1), node.sel(imd_decile=[str(d) for d in range(1, 11)]).values
    )
    line = [c for c in elements(obj, hv.Curve) if c.label.startswith("SII")][0]
    y0, y1 = line.dimension_values(1)
    sii = cube["inequality"]["sii_positivity_pct"].sel(area=LA).values[-1]
    assert y1 - y0 == pytest.approx(sii)


def test_neighbours_small_multiples(cube):
    obj = plots.neighbours(cube, LA)
    panels = list(obj.data.values())
    expected = [LA] + cube["/"]["neighbours"].sel(area=LA).values.astype(str).tolist()
    assert len(panels) == 16
    names = [plots.area_name(cube, c) for c in expected]
    assert [plot_opts(p)["title"] for p in panels] == names


def test_safe_view_is_labelled_and_suppressed(cube, safe_cube):
    obj = plots.caterpillar(safe_cube, "positivity_pct", safe=True)
    assert plots.SAFE_LABEL in plot_opts(obj)["title"]
    shown = len(elements(obj, hv.Scatter)[0])
    hidden = int(np.isnan(safe_cube["total"]["positivity_pct"].isel(week=-1).values[:309]).sum())
    assert hidden > 0 and shown == 309 - hidden
    with pytest.raises(ValueError, match="disclosure-controlled"):
        plots.trend(cube, LA, safe=True)


def test_unknown_la_is_a_clear_error(cube):
    with pytest.raises(KeyError, match="E99999999"):
        plots.trend(cube, "E99999999")
    with pytest.raises(KeyError, match="lower-tier"):
        plots.trend(cube, "E12000001")
