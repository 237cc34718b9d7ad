"""The explorer's state and views without a browser: LA switch, re-ranking, hex taps."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cube_fixture import make_fake_cube  # noqa: E402

from lds_dask.contract import refdata  # noqa: E402
from lds_dask.outputs.explore import Explorer, ExplorerState  # noqa: E402
from lds_dask.outputs.views.data import load_cube_arrays  # noqa: E402
from lds_dask.outputs.views.figures import hex_axial  # noqa: E402


@pytest.fixture(scope="module")
def tree():
    return make_fake_cube(weeks=6, seed=3)


@pytest.fixture(scope="module")
def cube(tree):
    return load_cube_arrays(tree)


def test_switching_la_redraws_trend_breakdown_and_highlights(tree, cube):
    app = Explorer(cube, ExplorerState(la="E06000001", period=cube.week_labels()[-1]))
    app._sync_widgets()
    app._redraw()
    app.select_la("E08000035")
    total = tree["total"].to_dataset()
    v = app.views
    np.testing.assert_allclose(
        v["trend_src"].data["la"], total["case_rate_per_100k"].sel(area="E08000035").values
    )
    np.testing.assert_allclose(
        v["trend_src"].data["region"], total["case_rate_per_100k"].sel(area="E12000003").values
    )
    np.testing.assert_allclose(
        v["trend_src"].data["england"],
        total["case_rate_per_100k"].sel(area=refdata.ENGLAND_CODE).values,
    )
    age = tree["age_band"].to_dataset()["case_rate_per_100k"].sel(area="E08000035")
    np.testing.assert_allclose(np.array(v["bd_src"].data["ys"]).T, age.values)
    assert v["cat_mark"].tags == ["E08000035"]
    assert app.la_input.value == "E08000035"
    assert "Leeds (E08000035)" in app.heading.object and "NOT FOR RELEASE" in app.heading.object
    assert v["trend"].tags[0].startswith("Leeds (E08000035)")


def test_changing_measure_and_period_reranks_caterpillar(cube):
    app = Explorer(cube)
    app._sync_widgets()
    app._redraw()
    app.state.param.update(measure="positivity_pct", period=cube.week_labels()[0])
    ranked = app.views["cat_src"].data
    assert len(ranked["code"]) == 309
    assert np.all(np.diff(ranked["value"][np.isfinite(ranked["value"])]) >= 0)
    i = cube.index[ranked["code"][0]]
    assert ranked["value"][0] == cube.nodes["total"].values["positivity_pct"][i, 0]
    assert np.isfinite(app.hex_src.data["value"]).all()


def test_hex_tap_and_bad_url_values(cube):
    app = Explorer(cube, ExplorerState(la="NOT-A-CODE", period="1999-01-04"))
    app._sync_widgets()
    assert app.state.la == cube.ltla_codes[0] and app.state.period == cube.week_labels()[-1]
    app._redraw()
    k = app.hex_src.data["code"].index("E09000033")
    app.hex_src.selected.indices = [k]
    assert app.state.la == "E09000033"
    assert app.views["trend_src"].tags == ["E09000033"]


def test_hex_axial_keeps_odd_r_neighbours_adjacent():
    # In odd-r layout, (q, r) touches (q, r + 1) and, on odd rows, (q + 1, r + 1) too.
    q = np.array([0, 0, 3, 4, 2, 2])
    r = np.array([2, 3, 5, 6, -1, 0])
    aq, ar = hex_axial(q, r)
    x, y = np.sqrt(3) * (aq + ar / 2), -1.5 * ar
    gaps = np.hypot(np.diff(x)[::2], np.diff(y)[::2])
    np.testing.assert_allclose(gaps, np.sqrt(3))
    assert np.all(np.diff(y)[::2] > 0)  # a higher hexjson row is drawn higher up
