"""``lds-dask export --cube CUBE.zarr --out DIR``: disclosure-controlled tables + ACRO evidence."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from lds_dask.cli import exits_on_error
from lds_dask.outputs.export import FORMATS, export_cube
from lds_dask.runtime.errors import BadInputError
from lds_dask.sdc.rules import DEFAULT_THRESHOLD, ROUNDING_BASES, DisclosureError, DisclosureRules


@click.command("export")
@click.option(
    "--cube",
    "cube",
    required=True,
    type=click.Path(path_type=Path),
    help="The profile cube (zarr) to export.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help=(
        "Output directory: must not exist unless --overwrite, and must not be, hold or "
        "sit inside the cube."
    ),
)
@click.option(
    "--threshold",
    default=DEFAULT_THRESHOLD,
    show_default=True,
    type=int,
    help="Counts below this are suppressed.",
)
@click.option(
    "--rounding",
    default="0",
    show_default=True,
    type=click.Choice([str(b) for b in ROUNDING_BASES]),
    help="Round published counts to this base (0: no rounding).",
)
@click.option(
    "--zeros-disclosive/--no-zeros-disclosive",
    default=True,
    show_default=True,
    help="Suppress zero counts (ACRO's zeros_are_disclosive).",
)
@click.option(
    "--format",
    "formats",
    default="csv",
    show_default=True,
    help=f"Comma-separated formats: {', '.join(FORMATS)}.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help=(
        "Replace an earlier export at --out (a directory this command wrote); a store, a "
        "cube, an input or any other directory is refused."
    ),
)
@exits_on_error
def command(
    cube: Path,
    out: Path,
    threshold: int,
    rounding: str,
    zeros_disclosive: bool,
    formats: str,
    overwrite: bool,
):
    """Export every cube node as a tidy table that passed disclosure control, with an
    ACRO results.json, checksums and a manifest."""
    try:
        rules = DisclosureRules(
            threshold=threshold, suppress_zeros=zeros_disclosive, rounding=int(rounding)
        )
    except DisclosureError as exc:  # rules that cannot be applied: bad options
        raise BadInputError(str(exc)) from None
    written = export_cube(
        cube,
        out,
        rules,
        [f.strip() for f in formats.split(",") if f.strip()],
        overwrite=overwrite,
        command=shlex.join(["lds-dask", *sys.argv[2:]]),
    )
    for path in sorted(p for p in written.rglob("*") if p.is_file()):
        click.echo(str(path))
