"""``lds-dask refresh JOB.toml``: run a job spec end to end on one Dask client.

Exit codes (:class:`~lds_dask.runtime.errors.ExitCode`): 0 done; 2 the job spec is invalid
(unknown key, bad value, missing input) or a stage's input is; a failed stage ends with its
cause's code (3 rows rejected, 4 workers lost, 5 write failure, 6 disclosure refused, 1 a
bug), in one line naming the stage, followed by where the run manifest is.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from lds_dask.cli import exits_on_error
from lds_dask.refresh.jobspec import JobSpec, load_jobspec
from lds_dask.refresh.run import LATEST_FILE, STATE_DIR, RefreshOptions, run_refresh


@click.command("refresh")
@click.argument("job", type=click.Path(path_type=Path))
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDR",
    help="Use an existing Dask scheduler (tcp://host:port); else "
    "[cluster] scheduler, DASK_SCHEDULER_ADDRESS, or a LocalCluster.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="LocalCluster worker processes (default: [cluster] n_workers, else one per core).",
)
@click.option("--force", is_flag=True, help="Re-run every stage, even when unchanged.")
@click.option(
    "--out", "root", type=click.Path(path_type=Path), default=None, help="Override [outputs] root."
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@exits_on_error
def command(
    job: Path,
    scheduler: str | None,
    workers: int | None,
    force: bool,
    root: Path | None,
    quiet: bool,
):
    """Run JOB.toml: ingest, cube, disclosure, export, plots and report, skipping stages
    whose inputs are unchanged."""
    spec = load_jobspec(job, root=root)
    options = RefreshOptions(
        scheduler=scheduler, n_workers=workers, force=force, progress=not quiet
    )
    execute(spec, options)


def execute(spec: JobSpec, options: RefreshOptions) -> dict:
    """Run the refresh and print its summary; a failure says where the run manifest is."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"Refresh [bold]{spec.job.name}[/bold] ({spec.path})")
    try:
        manifest = run_refresh(spec, options, say=console.print)
    except Exception as exc:
        exc.add_note(f"run manifest: {spec.outputs.root / STATE_DIR}")
        raise
    print_summary(spec, manifest)
    return manifest


def print_summary(spec: JobSpec, manifest: dict) -> None:
    """Stage table (status, time, rows) and where every output went (to stdout)."""
    console = Console(highlight=False, soft_wrap=True)  # paths stay whole, to copy
    table = Table(title=f"refresh {manifest['run_id']} ({manifest['seconds']:.1f}s)")
    for col in ("stage", "status", "seconds", "rows in", "rows out"):
        table.add_column(col, justify="left" if col in ("stage", "status") else "right")
    for name, st in manifest["stages"].items():
        table.add_row(
            name, st["status"], f"{st['seconds']:.1f}", _num(st["rows_in"]), _num(st["rows_out"])
        )
    console.print(table)
    console.print("Outputs:")
    for key, path in manifest["outputs"].items():
        console.print(f"  {key:<16} {path}")
    console.print(f"  {'manifest':<16} {spec.outputs.root / LATEST_FILE}")


def _num(n) -> str:
    return "-" if n is None else f"{n:,}"
