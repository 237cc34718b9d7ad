"""``lds-dask explore CUBE.zarr``: serve the interactive cube explorer locally."""

from __future__ import annotations

from pathlib import Path

import click

from lds_dask.cli import exits_on_error


@click.command("explore")
@click.argument("cube", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--port",
    default=5006,
    show_default=True,
    type=int,
    help="Port to serve on (0 picks a free one).",
)
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; keep it local on shared machines.",
)
@click.option("--safe", is_flag=True, help="Show only the disclosure-controlled view of the cube.")
@exits_on_error
def command(cube: Path, port: int, address: str, safe: bool):
    """Serve CUBE in the browser: LA search, measure, breakdown, period, linked views.

    The view is kept in the URL (?la=E08000035&measure=...), so it can be shared. All JS
    and CSS come from this server; nothing is fetched from the internet.
    """
    from lds_dask.outputs.explore import serve_explorer

    serve_explorer(
        cube, port=port, address=address, safe=safe, show_url=lambda text, **kw: click.echo(text)
    )
