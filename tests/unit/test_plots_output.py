"""Writing plots: self-contained HTML, valid PNGs, the `lds-dask plots` command, real cubes."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import holoviews as hv
import pytest
import xarray as xr
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cube_fixture import make_fake_cube, write_fake_cube  # noqa: E402

from lds_dask.cli import main  # noqa: E402
from lds_dask.outputs.plots import figures as plots  # noqa: E402

LA = "E06000001"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXTERNAL = re.compile(r"<(script|link|img)\b[^>]*\b(src|href)\s*=\s*[\"']?(https?:)?//", re.I)


def assert_self_contained(path: Path) -> None:
    html = path.read_text(encoding="utf-8")
    assert not EXTERNAL.search(html), path
    assert not re.search(r"<script[^>]*\bsrc=", html), path  # every script is inline
    assert "Open Government Licence v3.0" in html


@pytest.fixture(scope="module")
def cube():
    return make_fake_cube(weeks=4, seed=2)


def test_save_html_and_png(cube, tmp_path):
    obj = plots.trend(cube, LA)
    plots.save_html(obj, tmp_path / "t.html")
    plots.save_png(obj, tmp_path / "t.png")
    assert_self_contained(tmp_path / "t.html")
    assert "Hartlepool" in (tmp_path / "t.html").read_text()
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG_MAGIC


@pytest.fixture(scope="module")
def cube_path(tmp_path_factory):
    """One small fake cube on disk (zarr) shared by the command-line tests."""
    path = tmp_path_factory.mktemp("plots_cli") / "cube.zarr"
    write_fake_cube(path, weeks=2, seed=3)
    return path


def test_cli_writes_plots_as_html_and_png(cube_path, tmp_path, monkeypatch):
    import lds_dask.cli.plots as cli_plots

    def two_plots(cube, la, safe=False):  # every plot is written by the --safe test below
        return {
            "trend": plots.trend(cube, la, safe=safe),
            "hexmap": plots.hexmap(cube, highlight=la),
        }

    monkeypatch.setattr(cli_plots, "la_plots", two_plots)
    args = ["plots", "--cube", str(cube_path), "--la", LA, "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--format", "html,png"])
    assert result.exit_code == 0, result.output
    paths = [Path(p) for p in result.stdout.split()]
    assert sorted(p.name for p in paths) == sorted(
        f"{LA}_{s}.{f}" for s in ("trend", "hexmap") for f in ("html", "png")
    )
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG_MAGIC
        else:
            assert_self_contained(p)


def test_cli_safe_writes_every_plot_of_the_controlled_view(cube_path, tmp_path):
    """--safe: default disclosure rules on the plotted nodes, every plot labelled safe."""
    args = ["plots", "--cube", str(cube_path), "--la", LA, "--out", str(tmp_path / "out")]
    args += ["--safe", "--format", "html"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    paths = [Path(p) for p in result.stdout.split()]
    stems = {p.stem.removeprefix(f"{LA}_") for p in paths}
    every = {"trend", "breakdown_age_band", "breakdown_ethnicity", "caterpillar", "funnel"}
    every |= {"hexmap", "choropleth", "inequality", "neighbours"}  # bivariate_map: optional
    assert every <= stems
    assert all(p.suffix == ".html" for p in paths)
    for p in paths:
        assert_self_contained(p)
        html = p.read_text(encoding="utf-8")
        assert plots.SAFE_LABEL in html and plots.UNSAFE_LABEL not in html


def test_plot_nodes_give_the_same_safe_view_as_the_whole_cube(cube_path):
    from lds_dask.cube.build import load_nodes, open_cube
    from lds_dask.outputs.plots.figures import PLOT_NODES
    from lds_dask.sdc.rules import DisclosureRules, safe_view

    whole = safe_view(open_cube(cube_path).load(), DisclosureRules())
    part = safe_view(load_nodes(open_cube(cube_path), PLOT_NODES), DisclosureRules())
    assert set(part.children) == set(PLOT_NODES)
    for node in PLOT_NODES:
        xr.testing.assert_identical(part[node].to_dataset(), whole[node].to_dataset())


def test_cli_unknown_la_exits_2(cube_path, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "plots",
            "--cube",
            str(cube_path),
            "--la",
            "E99999999",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2
    assert "E99999999" in result.output and "lower-tier LA" in result.output
    assert not (tmp_path / "out").exists()


def test_plots_on_a_real_small_cube(tmp_path):
    from lds_dask.cube.build import build_cube, open_cube
    from lds_dask.store.handmade import record_frame, write_store

    day0 = dt.date(2020, 10, 5)
    rows = [
        dict(
            test_id=f"t{i:03d}",
            person_id=f"p{i}",
            la_code=la,
            specimen_date=day0 + dt.timedelta(days=i % 14),
            result="POSITIVE" if i % 4 == 0 else "NEGATIVE",
        )
        for i, la in enumerate([LA, "E06000002", "E08000035"] * 40)
    ]
    write_store(tmp_path / "store", record_frame(rows))
    cube = open_cube(build_cube(tmp_path / "store", tmp_path / "cube.zarr", progress=False))
    obj = plots.trend(cube, LA)
    curve = [
        c
        for c in obj.traverse(lambda x: x)
        if type(c).__name__ == "Curve" and c.label == "Hartlepool"
    ][0]
    expected = cube["total"]["case_rate_per_100k"].sel(area=LA).values
    assert curve.dimension_values(1).tolist() == pytest.approx(expected.tolist(), nan_ok=True)
    hexes = plots.hexmap(cube, highlight=LA).traverse(lambda x: x, [hv.Polygons])[0]
    assert len(hexes.data) == 309
    points = plots.caterpillar(cube, "positivity_pct", highlight=LA).traverse(
        lambda x: x, [hv.Scatter]
    )[0]
    assert LA in points.dimension_values("la_code")  # LAs with no tests are NaN: left out
    plots.inequality(cube, LA)
    plots.save_html(plots.funnel(cube, highlight=LA), tmp_path / "x.html")
    assert_self_contained(tmp_path / "x.html")
