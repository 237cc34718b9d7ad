"""``lds-dask report --cube CUBE.zarr --out DIR``: the all-LA HTML report pack."""

from __future__ import annotations

import time
from pathlib import Path

import click

from lds_dask.cli import exits_on_error
from lds_dask.runtime.errors import BadInputError


@click.command("report")
@click.option(
    "--cube",
    "cube",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The profile cube (zarr) to report on.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=(
        "Directory for index.html, one CODE.html per LA and static/: must not exist unless "
        "--overwrite; never the cube or inside it."
    ),
)
@click.option("--la", "las", multiple=True, help="LA code to include (repeatable; default all).")
@click.option("--safe", is_flag=True, help="Only the disclosure-controlled view of the cube.")
@click.option("--scheduler", default=None, help="Address of an existing Dask scheduler.")
@click.option("--workers", type=int, default=None, help="Local workers (default: one per core).")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a report pack this command wrote at --out; any other directory is refused.",
)
@exits_on_error
def command(
    cube: Path,
    out: Path,
    las: tuple[str, ...],
    safe: bool,
    scheduler: str | None,
    workers: int | None,
    overwrite: bool,
):
    """Build one HTML profile per LA, in parallel on Dask, plus a searchable index.html.

    Pages share DIR/static (BokehJS copied from the installed package), so the pack works
    offline. Without --safe every page is marked NOT FOR RELEASE.
    """
    from lds_dask.outputs.report import build_report

    start = time.perf_counter()
    try:
        rows = build_report(
            cube,
            out,
            list(las) or None,
            safe=safe,
            scheduler=scheduler,
            workers=workers,
            overwrite=overwrite,
        )
    except ValueError as exc:  # its checks of --la (a cube holds no person-level value)
        raise BadInputError(str(exc)) from None
    click.echo(
        f"Wrote {len(rows)} LA pages and {out / 'index.html'} "
        f"in {time.perf_counter() - start:.1f} s"
        f"{' (disclosure-controlled view)' if safe else ' (NOT FOR RELEASE)'}"
    )
