"""``lds-dask validate PATH --table T``: per-rule summary; exit 3 when any row is invalid.

Exit codes (:class:`~lds_dask.runtime.errors.ExitCode`): 0 every row valid, 2 bad input (a
file that cannot be read, a wrong header), 3 invalid rows found, 5 the quarantine could not
be written.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from lds_dask.cli import exits_on_error
from lds_dask.contract.io import find_input_files, source_names, write_quarantine
from lds_dask.contract.schemas import load_schema, table_names
from lds_dask.contract.validation import validate_file
from lds_dask.runtime.errors import RowsRejectedError


@click.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--table",
    "table",
    required=True,
    type=click.Choice(table_names()),
    help="Schema to validate against.",
)
@click.option(
    "--quarantine",
    type=click.Path(path_type=Path),
    help="Write failing rows, with their reason codes, to this directory "
    "(one <file>.rejected.parquet per input file; raw values: keep it inside the TRE).",
)
@exits_on_error
def command(path: Path, table: str, quarantine: Path | None):
    """Validate a CSV/parquet file, or a directory of them, against schemas/TABLE."""
    console = Console()
    schema = load_schema(table)
    inputs = find_input_files([path])
    for line in inputs.skipped_lines():
        click.echo(line)
    totals: dict[str, int] = {}
    rows_in = rejected = written = 0
    for f, name in zip(inputs.files, source_names(list(inputs.files)), strict=True):
        result = validate_file(f, schema)
        if result.rows_in == 0:
            click.echo(f"{f}: 0 rows (the file has its columns but no data)")
        rows_in += result.rows_in
        rejected += result.rejected.height
        for rule, n in result.rule_counts.items():
            totals[rule] = totals.get(rule, 0) + n
        if quarantine:
            written += write_quarantine(result.rejected, quarantine / f"{name}.rejected.parquet", f)
    click.echo(
        f"{table}: {rows_in:,} rows in {len(inputs.files)} file(s), "
        f"{rows_in - rejected:,} valid, {rejected:,} rejected"
    )
    console.print(summary_table(totals))
    if written:
        click.echo(f"Quarantined {written:,} rows to {quarantine}")
    if rejected:
        raise RowsRejectedError(f"{table}: {rejected:,} of {rows_in:,} rows are invalid")


def summary_table(totals: dict[str, int]) -> Table:
    """A per-rule table of failing row counts; never shows a value."""
    out = Table()
    out.add_column("rule")
    out.add_column("rows failing", justify="right")
    for rule, n in sorted(totals.items()):
        out.add_row(rule, f"{n:,}")
    if not totals:
        out.add_row("(none)", "0")
    return out
