"""`lds-dask explore` in headless chromium: URL state, LA search, hex click, no CDN."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.conftest import start_explorer, stop

pytestmark = pytest.mark.browser

SOURCE_JS = """name => {
  for (const doc of window.Bokeh.documents) {
    const m = doc.get_model_by_name(name);
    if (m) return {tags: m.tags, data: Object.fromEntries(Object.entries(m.data).map(
        ([k, v]) => [k, Array.from(v, x => (typeof x === 'number' ? x : String(x)))]))};
  }
  return null;
}"""


@pytest.fixture(scope="module")
def explorer(cube_path):
    proc, url = start_explorer(cube_path)
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def cube_total(cube_path):
    import xarray as xr

    return xr.open_datatree(cube_path, engine="zarr", consolidated=False)["total"].to_dataset()


def wait_for_la(page, code: str) -> dict:
    page.wait_for_function(
        "code => { const d = window.Bokeh && window.Bokeh.documents[0];"
        " const m = d && d.get_model_by_name('trend-source');"
        " return m && m.tags[0] === code; }",
        arg=code,
        timeout=15000,
    )
    return page.evaluate(SOURCE_JS, "trend-source")


def test_url_opens_on_la_then_search_switches_it(explorer, new_page, cube_total, artifacts):
    page, log = new_page()
    page.goto(f"{explorer}?la=E08000003&measure=positivity_pct")
    trend = wait_for_la(page, "E08000003")
    expected = cube_total["positivity_pct"].sel(area="E08000003").values
    np.testing.assert_allclose(trend["data"]["la"], expected, rtol=1e-9)
    page.wait_for_function("() => document.title.startsWith('Manchester (E08000003)')")
    assert "NOT FOR RELEASE" in page.title()
    assert page.locator("#explorer-heading").get_attribute("data-la") == "E08000003"
    page.screenshot(path=artifacts / "explore-manchester.png", full_page=True)

    box = page.locator("input").first
    box.click()
    box.fill("")
    box.press_sequentially("Leeds", delay=20)
    page.locator(".bk-menu >> text=Leeds (E08000035)").click()
    trend = wait_for_la(page, "E08000035")
    np.testing.assert_allclose(
        trend["data"]["la"], cube_total["positivity_pct"].sel(area="E08000035").values
    )
    page.wait_for_function("() => document.title.startsWith('Leeds (E08000035)')")
    page.wait_for_function("() => location.search.includes('la=E08000035')")
    assert "measure=positivity_pct" in page.url
    assert page.locator("#explorer-heading").inner_text().startswith("Leeds")
    page.screenshot(path=artifacts / "explore-leeds.png", full_page=True)
    assert log.errors == []
    assert log.off_host() == [], "requests left localhost"


def test_clicking_a_hex_selects_its_la(explorer, new_page, cube_total, artifacts):
    page, log = new_page()
    page.goto(f"{explorer}?la=E06000001")
    wait_for_la(page, "E06000001")
    hexes = page.evaluate(SOURCE_JS, "hex-source")["data"]
    k = hexes["code"].index("E08000025")  # Birmingham
    point = page.evaluate(HEX_SCREEN_JS, [hexes["q"][k], hexes["r"][k]])
    page.mouse.click(point["x"], point["y"])
    trend = wait_for_la(page, "E08000025")
    np.testing.assert_allclose(
        trend["data"]["la"], cube_total["case_rate_per_100k"].sel(area="E08000025").values
    )
    page.wait_for_function("() => location.search.includes('la=E08000025')")
    assert page.evaluate(SOURCE_JS, "caterpillar-highlight")["tags"][0] == "E08000025"
    page.screenshot(path=artifacts / "explore-hex-click.png", full_page=True)
    assert log.errors == [] and log.off_host() == []


# Page coordinates of a hex centre: axial (q, r) -> data (x, y) as Bokeh's hex_tile does
# (pointy top, size 1), then through the figure view's scales to the canvas.
HEX_SCREEN_JS = """([q, r]) => {
  const x = Math.sqrt(3) * (q + r / 2), y = -1.5 * r;
  const fig = window.Bokeh.documents[0].get_model_by_name('hex-figure');
  const view = window.Bokeh.index.find_one(fig);
  const sx = view.frame.x_scale.compute(x), sy = view.frame.y_scale.compute(y);
  const rect = view.canvas_view.el.getBoundingClientRect();
  return {x: rect.left + sx, y: rect.top + sy};
}"""


def test_safe_mode_says_so(cube_path, new_page, artifacts):
    proc, url = start_explorer(cube_path, "--safe")
    try:
        page, log = new_page()
        page.goto(f"{url}?la=E06000053")
        wait_for_la(page, "E06000053")
        page.wait_for_function("() => document.title.includes('disclosure-controlled')")
        banner = page.locator("#view-banner")
        assert banner.get_attribute("data-view") == "safe"
        assert "NOT FOR RELEASE" not in banner.inner_text()
        page.screenshot(path=artifacts / "explore-safe.png", full_page=True)
        assert log.errors == [] and log.off_host() == []
    finally:
        stop(proc)
