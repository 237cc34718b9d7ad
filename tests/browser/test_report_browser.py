"""The report pack in headless chromium: index search, a link, headline numbers vs cube."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.browser

LAS = ["E08000035", "E06000001", "E09000033"]


@pytest.fixture(scope="module")
def pack(cube_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("pack") / "pack"  # a new folder: report replaces none
    cmd = [
        sys.executable,
        "-m",
        "lds_dask",
        "report",
        "--cube",
        str(cube_path),
        "--out",
        str(out),
        "--workers",
        "1",
        *[a for la in LAS for a in ("--la", la)],
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def total(cube_path):
    import xarray as xr

    tree = xr.open_datatree(cube_path, engine="zarr", consolidated=False)
    return tree["total"].to_dataset().isel(week=-1)


def value_of(page, ident: str) -> float:
    return float(page.locator(f"#{ident}").get_attribute("data-value"))


def test_index_search_link_and_headline(pack, total, new_page, artifacts):
    page, log = new_page()
    page.goto((pack / "index.html").as_uri())
    assert page.locator("li.la").count() == len(LAS)
    assert "NOT FOR RELEASE" in page.locator("#view-banner").inner_text()
    page.locator("#search").fill("west")  # Westminster only
    assert page.locator("#match-count").inner_text() == "1"
    assert page.locator("section.region:not([hidden])").count() == 1
    page.screenshot(path=artifacts / "report-index-search.png", full_page=True)
    page.locator("#search").fill("")
    page.locator("#link-E08000035").click()
    page.wait_for_selector(".bk-Canvas, .bk-Figure", state="attached", timeout=15000)
    assert page.locator("#page-heading").get_attribute("data-la") == "E08000035"
    leeds = total.sel(area="E08000035")
    assert value_of(page, "people-positive") == int(leeds["people_positive"])
    assert value_of(page, "people-tested") == int(leeds["people_tested"])
    for ident, var in (
        ("case-rate", "case_rate_per_100k"),
        ("case-rate-lower", "case_rate_per_100k_lower"),
        ("case-rate-upper", "case_rate_per_100k_upper"),
        ("positivity", "positivity_pct"),
    ):
        assert value_of(page, ident) == pytest.approx(float(leeds[var]), rel=1e-9)
    sig = page.locator("#sig-vs-england")
    assert sig.get_attribute("data-value") == str(leeds["sig_vs_england"].item())
    assert "Leeds" in page.locator(".headline").first.inner_text()
    page.wait_for_timeout(500)  # let BokehJS finish drawing before the screenshot
    page.screenshot(path=artifacts / "report-leeds.png", full_page=True)
    assert log.errors == []
    assert log.off_host() == [] and all(u.startswith("file:") for u in log.requests)
