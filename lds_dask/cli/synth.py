"""``lds-dask synth``: write a synthetic national extract with its planted truth."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import click

from lds_dask.cli import exits_on_error
from lds_dask.runtime.errors import BadInputError


@click.command("synth")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Output directory (test_records/, survey_responses/, truth/, ...).",
)
@click.option(
    "--scale",
    default=0.01,
    show_default=True,
    type=float,
    help="1.0 = national volume (~69M PCR person-weeks over 52 weeks).",
)
@click.option("--seed", default=42, show_default=True, type=int)
@click.option(
    "--start",
    default="2020-05-25",
    show_default=True,
    help="First ISO week (a Monday, yyyy-mm-dd).",
)
@click.option("--weeks", default=52, show_default=True, type=int)
@click.option(
    "--format", "fmt", default="parquet", show_default=True, type=click.Choice(["parquet", "csv"])
)
@click.option(
    "--dirty-rate",
    default=0.0,
    show_default=True,
    type=float,
    help="Extra defective rows as a fraction of clean test records.",
)
@click.option("--scheduler", default=None, help="Dask scheduler address (else a LocalCluster).")
@click.option("--workers", default=None, type=int, help="LocalCluster workers (default: cores).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@exits_on_error
def command(
    out: Path,
    scale: float,
    seed: int,
    start: str,
    weeks: int,
    fmt: str,
    dirty_rate: float,
    scheduler: str | None,
    workers: int | None,
    quiet: bool,
):
    """Generate synthetic national Test and Trace extracts with a planted truth."""
    from lds_dask.runtime.cluster import get_client
    from synthetic_gen import GenerateOptions, generate

    try:
        first = dt.date.fromisoformat(start)
        GenerateOptions(scale, seed, first, weeks, fmt, dirty_rate).check()
    except ValueError as exc:  # the options' own checks: messages name the option only
        raise BadInputError(f"synth: {exc}") from None
    began = time.perf_counter()
    with get_client(scheduler, workers, quiet=quiet) as client:
        manifest = generate(
            out,
            scale=scale,
            seed=seed,
            start=first,
            weeks=weeks,
            fmt=fmt,
            dirty_rate=dirty_rate,
            client=client,
            progress=not quiet,
        )
    seconds = time.perf_counter() - began
    click.echo(summary_line(manifest, seconds))
    for name in ("test_records", "survey_responses", "ahah.parquet", "truth", "manifest.json"):
        click.echo(f"wrote {out / name}")


def summary_line(manifest: dict, seconds: float) -> str:
    """One line: records, files, seconds and rate."""
    c = manifest["counts"]
    records = c["test_records"]["rows"] + c["survey_responses"]["rows"]
    files = c["test_records"]["files"] + c["survey_responses"]["files"]
    return (
        f"synth: {c['test_records']['rows']:,} test records "
        f"({c['test_records']['rows'] - c['test_records']['clean_rows']:,} dirty) + "
        f"{c['survey_responses']['rows']:,} survey responses in {files:,} files, "
        f"{seconds:.1f} s ({records / max(seconds, 1e-9):,.0f} records/s)"
    )
