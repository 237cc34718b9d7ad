"""``lds-dask plots``: write every comparison plot for one LA as HTML and/or PNG."""

from __future__ import annotations

from pathlib import Path

import click

from lds_dask.cli import exits_on_error
from lds_dask.outputs.plots.figures import PLOT_NODES, la_plots

FORMATS = ("html", "png")


def _formats(text: str) -> list[str]:
    chosen = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = sorted(set(chosen) - set(FORMATS))
    if bad or not chosen:
        raise click.BadParameter(f"choose from {', '.join(FORMATS)}", param_hint="--format")
    return chosen


def _open(cube_path: str, la: str, safe: bool):
    """Open the cube, check the LA (cheap: coordinates only), then read the nodes the plots
    use once (one LA's plots touch every area); --safe applies the default disclosure rules
    to them."""
    from lds_dask.cube.build import load_nodes, open_cube
    from lds_dask.outputs.plots import figures as plots

    cube = open_cube(cube_path)
    try:
        plots.check_la(cube, la)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--la") from None
    cube = load_nodes(cube, PLOT_NODES)
    if safe:
        from lds_dask.sdc.rules import DisclosureRules, safe_view

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
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Output directory: must not exist unless --overwrite; never the cube or inside it.",
)
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
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace plots this command wrote at --out before; any other directory is refused.",
)
@exits_on_error
def command(cube_path: str, la: str, out: str, formats: str, safe: bool, overwrite: bool):
    """Write every comparison plot for one LA (HTML and/or PNG) and print their paths.

    The plots are written into a hidden folder beside --out, renamed into place when all
    are written."""
    from lds_dask.outputs.plots import figures as plots
    from lds_dask.runtime.publish import check_target, publishing

    chosen = _formats(formats)
    target, reads = Path(out), [("cube", Path(cube_path))]
    check_target(target, "plots", overwrite, reads)
    cube = _open(cube_path, la, safe)
    written = []
    with publishing(target, "plots", overwrite, reads) as tmp:
        for stem, obj in la_plots(cube, la, safe=safe).items():
            for fmt in chosen:
                written.append(f"{la}_{stem}.{fmt}")
                (plots.save_html if fmt == "html" else plots.save_png)(obj, tmp / written[-1])
    for name in written:
        click.echo(str(target / name))
