"""``lds-dask ingest``: validate, quarantine, link and partition raw extracts into a store.

Exit codes (:class:`~lds_dask.runtime.errors.ExitCode`): 0 committed (or nothing to do),
2 bad input (missing or malformed file, wrong columns, incompatible store), 3 reject-rate
ceiling exceeded (report written, nothing committed), 4 Dask workers lost, 5 write failure.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from lds_dask.cli import cannot_write, exits_on_error
from lds_dask.ingest.run import RejectRateError, RunReport, ingest


@click.command("ingest")
@click.option(
    "--raw",
    "raw",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Test-record extract: a CSV/parquet file or a directory (repeatable).",
)
@click.option(
    "--store",
    required=True,
    type=click.Path(path_type=Path),
    help="Store directory (created when new).",
)
@click.option(
    "--survey", type=click.Path(path_type=Path), help="Survey responses file or directory."
)
@click.option("--ahah", type=click.Path(path_type=Path), help="AHAH v3 file (CDRC layout).")
@click.option("--scheduler", help="Dask scheduler address (default: a LocalCluster).")
@click.option("--workers", type=int, help="LocalCluster worker processes (default: cores).")
@click.option(
    "--max-reject-rate",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fail the run when more than this share of rows is quarantined.",
)
@exits_on_error
def command(raw, store, survey, ahah, scheduler, workers, max_reject_rate):
    """Validate, quarantine and partition raw extracts into the LA-partitioned store."""
    from lds_dask.ingest.run import plan_inputs
    from lds_dask.runtime.cluster import get_client

    console = Console()
    plan_inputs(list(raw), survey)  # fail fast on user errors, before starting a cluster
    try:
        with get_client(scheduler, workers) as client:
            report = ingest(
                list(raw),
                store,
                survey=survey,
                ahah=ahah,
                client=client,
                max_reject_rate=max_reject_rate,
            )
    except RejectRateError as exc:
        print_messages(console, exc.report)
        console.print(report_table(exc.report))
        raise
    except OSError as exc:  # e.g. a full disk or a store path under a file
        if not exc.filename:
            raise
        raise cannot_write(exc, store, "the store was not changed") from None
    print_messages(console, report)
    if report.status == "noop":
        return
    console.print(report_table(report))
    console.print(f"AHAH deciles: {report.ahah}", highlight=False)
    for path in report.outputs:
        console.print(f"wrote {path}", highlight=False)


def print_messages(console: Console, report: RunReport) -> None:
    """What the run says besides its table: files not read, recovery, files skipped."""
    for line in report.messages:
        console.print(line, highlight=False, soft_wrap=True)  # paths stay whole


def report_table(report: RunReport) -> Table:
    """Per input file: rows in, stored, quarantined, and the quarantine reasons (counts only)."""
    t = report.totals
    table = Table(
        title=f"ingest run {report.run_id} ({report.status}): {t['rows_in']:,} rows in, "
        f"{t['rows_stored']:,} stored, {t['rows_quarantined']:,} quarantined "
        f"({report.reject_rate:.2%}; ceiling {report.max_reject_rate:.2%})"
    )
    for name in ("file", "status", "rows in", "stored", "quarantined", "reasons"):
        table.add_column(
            name, justify="right" if name in ("rows in", "stored", "quarantined") else "left"
        )
    for f in report.files:
        reasons = ", ".join(f"{rule} {n:,}" for rule, n in f["reasons"].items()) or "-"
        table.add_row(
            Path(f["path"]).name,
            f["status"],
            f"{f['rows_in']:,}",
            f"{f['rows_stored']:,}",
            f"{f['rows_quarantined']:,}",
            reasons,
        )
    return table
