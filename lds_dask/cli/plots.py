"""``lds-dask plots``: write every comparison plot for one LA as HTML and/or PNG."""

from __future__ import annotations

from pathlib import Path

import click

FORMATS = ("html", "png")


def la_plots(cube, la: str, safe: bool = False) -> dict:
    """Every plot for one LA, by file stem. The bivariate map is left out (with a note on
    stderr) when the optional LSOA polygons are not installed or the LA has no LSOAs."""
    from lds_dask import plots

    out = {
        "trend": plots.trend(cube, la, safe=safe),
        "breakdown_age_band": plots.breakdown_trend(cube, la, "age_band", safe=safe),
        "breakdown_ethnicity": plots.breakdown_trend(cube, la, "ethnicity", safe=safe),
        "caterpillar": plots.caterpillar(cube, highlight=la, safe=safe),
        "funnel": plots.funnel(cube, highlight=la, safe=safe),
        "hexmap": plots.hexmap(cube, highlight=la, safe=safe),
        "choropleth": plots.choropleth(cube, highlight=la, safe=safe),
        "inequality": plots.inequality(cube, la, safe=safe),
        "neighbours": plots.neighbours(cube, la, safe=safe),
    }
    try:
        out["bivariate_map"] = plots.bivariate_map(cube, la, safe=safe)
    except (ImportError, ValueError, KeyError) as exc:
        click.echo(f"bivariate_map skipped: {exc}", err=True)
    return out


def _formats(text: str) -> list[str]:
    chosen = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = sorted(set(chosen) - set(FORMATS))
    if bad or not chosen:
        raise click.BadParameter(f"choose from {', '.join(FORMATS)}", param_hint="--format")
    return chosen


# The nodes la_plots reads (/age_band, /ethnicity, /imd_decile for the LA's breakdowns and
# inequality; /lsoa for the bivariate map). Each node's safe view depends only on nodes of
# fewer dims (its margins), so this subset gives the same safe values as the whole cube.
PLOT_NODES = ("total", "age_band", "ethnicity", "imd_decile", "inequality", "lsoa")


def _open(cube_path: str, la: str, safe: bool):
    """Open the cube, check the LA (cheap: coordinates only), then read the nodes the plots
    use once (one LA's plots touch every area); --safe applies the default disclosure rules
    to them."""
    from lds_dask import plots
    from lds_dask.cube import load_nodes, open_cube

    cube = open_cube(cube_path)
    try:
        plots.check_la(cube, la)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--la") from None
    cube = load_nodes(cube, PLOT_NODES)
    if safe:
        from lds_dask.disclosure import DisclosureRules, safe_view

        cube = safe_view(cube, DisclosureRules())
    return cube


@click.command("plots")
@click.option(
    "--cube",
    "cube_path",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The cube (zarr directory).",
)
@click.option("--la", required=True, help="Lower-tier LA code (GSS), e.g. E06000001.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option(
    "--format",
    "formats",
    default="html",
    show_default=True,
    help="Comma-separated: html (self-contained, fast), png (matplotlib, slow).",
)
@click.option(
    "--safe", is_flag=True, help="Plot only the disclosure-controlled view (default rules)."
)
def command(cube_path: str, la: str, out: str, formats: str, safe: bool):
    """Write every comparison plot for one LA (HTML and/or PNG) and print their paths."""
    from lds_dask import plots

    chosen = _formats(formats)
    cube = _open(cube_path, la, safe)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    for stem, obj in la_plots(cube, la, safe=safe).items():
        for fmt in chosen:
            path = target / f"{la}_{stem}.{fmt}"
            (plots.save_html if fmt == "html" else plots.save_png)(obj, path)
            click.echo(str(path))
