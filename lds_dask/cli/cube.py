"""``lds-dask cube --store DIR --out CUBE.zarr``: build the all-LA profile cube."""

from __future__ import annotations

import time
from pathlib import Path

import click

from lds_dask.cli import cannot_write, exits_on_error


@click.command("cube")
@click.option(
    "--store",
    "store",
    required=True,
    type=click.Path(path_type=Path),
    help="Ingest store directory (written by `lds-dask ingest`).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help=(
        "Cube to write (a .zarr directory). An existing one is replaced only if "
        "`lds-dask cube` wrote it; it must not be, hold or sit inside the store."
    ),
)
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Local worker processes (default: one per core).",
)
@click.option(
    "--people-scope",
    type=click.Choice(["PCR", "ALL"]),
    default="PCR",
    show_default=True,
    help="Test types that count people and positivity.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@exits_on_error
def command(
    store: Path,
    out: Path,
    scheduler: str | None,
    workers: int | None,
    people_scope: str,
    quiet: bool,
):
    """Build the all-LA profile cube (xarray DataTree on zarr) from an ingest store.

    The store is checked first (manifest, commit marker, partition set) and every partition
    as it is read (sha256); the cube is written beside ``--out`` and renamed into place."""
    from lds_dask.cube.build import CubeConfig, build_cube
    from lds_dask.runtime.cluster import get_client
    from lds_dask.runtime.publish import check_target, publishing
    from lds_dask.store.read import Store

    reads = [("store", store)]
    Store(store)
    config = CubeConfig(people_scope=people_scope)
    check_target(out, "cube", overwrite=True, reads=reads)
    start = time.perf_counter()
    try:
        with (
            get_client(scheduler, workers, quiet=quiet) as client,
            publishing(out, "cube", overwrite=True, reads=reads) as tmp,
        ):
            build_cube(store, tmp, client=client, config=config, progress=not quiet)
    except OSError as exc:  # e.g. a full disk or an output path under a file
        if not exc.filename:
            raise
        raise cannot_write(exc, out) from None
    click.echo(f"Cube written to {out} in {time.perf_counter() - start:.1f} s")
