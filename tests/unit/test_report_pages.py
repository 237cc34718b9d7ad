"""Report pages and index without a browser: headline numbers, safe mode, index, static."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cube_fixture import make_fake_cube  # noqa: E402

from lds_dask.outputs import report  # noqa: E402
from lds_dask.outputs.views.data import load_cube_arrays  # noqa: E402


@pytest.fixture(scope="module")
def tree():
    return make_fake_cube(weeks=5, seed=7)


@pytest.fixture(scope="module")
def cube(tree):
    return load_cube_arrays(tree)


def data_values(page: str) -> dict[str, str]:
    return dict(re.findall(r'<span id="([\w-]+)"[^>]*data-value="([^"]*)"', page))


def test_headline_numbers_match_the_cube(tree, cube):
    values = data_values(report.headline_html(cube, "E08000035", 4))
    leeds = tree["total"].to_dataset().sel(area="E08000035").isel(week=4)
    assert int(values["people-positive"]) == int(leeds["people_positive"])
    assert int(values["people-tested"]) == int(leeds["people_tested"])
    for ident, var in (
        ("case-rate", "case_rate_per_100k"),
        ("positivity", "positivity_pct"),
        ("case-rate-lower", "case_rate_per_100k_lower"),
    ):
        assert float(values[ident]) == pytest.approx(float(leeds[var]), rel=1e-9)
    assert values["sig-vs-england"] == str(leeds["sig_vs_england"].item())


def test_suppressed_values_are_words_not_numbers(cube):
    vals = cube.nodes["total"].values
    i = cube.index["E06000001"]
    saved = vals["people_positive"][i, 0], vals["case_rate_per_100k"][i, 0]
    vals["people_positive"][i, 0] = vals["case_rate_per_100k"][i, 0] = np.nan
    try:
        text = report.headline_html(cube, "E06000001", 0)
    finally:
        vals["people_positive"][i, 0], vals["case_rate_per_100k"][i, 0] = saved
    assert data_values(text)["people-positive"] == ""
    assert 'id="case-rate" class="suppressed"' in text and "not compared with" in text


def test_page_has_every_section_and_the_view_banner(cube):
    page = report.render_page(cube, "E06000001", ["static/js/bokeh.min.js"])
    for ident in ("trend", "caterpillar", "inequality", "neighbours", "age_band", "sex"):
        assert ident in page
    assert 'class="banner unsafe"' in page and "NOT FOR RELEASE" in page
    assert '<script src="static/js/bokeh.min.js">' in page
    assert "cdn." not in page and "https://" not in page.split("<footer>")[0]
    assert page.count('href="E') >= 16  # the LA and its 15 neighbours link to their pages


def test_safe_page_says_so(tree):
    from lds_dask.sdc.rules import DisclosureRules, safe_view

    safe = load_cube_arrays(safe_view(tree, DisclosureRules()), safe=True)
    page = report.render_page(safe, "E06000001", [])
    assert 'class="banner safe"' in page and "NOT FOR RELEASE" not in page


def test_index_groups_by_region_and_links_every_la():
    rows = [
        {"la": "E08000035", "name": "Leeds", "region": "E12000003", "week": "w"},
        {"la": "E08000036", "name": "Wakefield", "region": "E12000003", "week": "w"},
        {"la": "E09000033", "name": "Westminster", "region": "E12000007", "week": "w"},
    ]
    page = report.index_html(rows, safe=True, week="2020-11-02")
    assert page.count('<section class="region"') == 2
    assert page.index("London") < page.index("Yorkshire")
    assert all(f'href="{r["la"]}.html"' in page for r in rows)
    assert 'data-search="leeds e08000035"' in page and "disclosure-controlled" in page


def test_copy_static_ships_the_installed_bokehjs(tmp_path):
    import bokeh

    scripts = report.copy_static(tmp_path)
    assert scripts == [f"static/js/bokeh-{bokeh.__version__}.min.js"]
    assert (tmp_path / scripts[0]).stat().st_size > 500_000
    assert (tmp_path / "static" / "report.css").is_file()


def test_unknown_la_codes_are_refused(tmp_path):
    from cube_fixture import write_fake_cube

    write_fake_cube(tmp_path / "c.zarr", weeks=2)
    assert report.select_las(tmp_path / "c.zarr", ["E08000035"]) == ["E08000035"]
    assert len(report.select_las(tmp_path / "c.zarr", None)) == 309
    with pytest.raises(ValueError, match="E99999999"):
        report.select_las(tmp_path / "c.zarr", ["E99999999"])
