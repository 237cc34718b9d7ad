"""``lds-dask demo``: the README's first command; ``jobs/demo.toml`` on the embedded default.

Generates a ~1% synthetic national dataset (all 309 LAs, 52 weeks) and runs the full
refresh on a LocalCluster sized to the machine, then says where everything is and how to
open the explorer.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console

import lds_dask
from lds_dask.cli import exits_on_error
from lds_dask.cli.refresh import execute
from lds_dask.refresh.jobspec import load_jobspec
from lds_dask.refresh.run import LATEST_FILE, RefreshOptions

SPEC_NAME = "demo.toml"


def demo_spec_path() -> Path:
    """jobs/demo.toml: packaged in a wheel (lds_dask/_jobs), or the source checkout's."""
    packaged = Path(lds_dask.__file__).parent / "_jobs" / SPEC_NAME
    source = Path(lds_dask.__file__).resolve().parents[1] / "jobs" / SPEC_NAME
    return packaged if packaged.is_file() else source


@click.command("demo")
@click.option(
    "--out",
    "root",
    type=click.Path(path_type=Path),
    default=Path("lds-demo"),
    show_default=True,
    help="Where every output goes.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="LocalCluster worker processes (default: one per core).",
)
@click.option("--force", is_flag=True, help="Re-run every stage, even when unchanged.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@exits_on_error
def command(root: Path, workers: int | None, force: bool, quiet: bool):
    """Generate a small synthetic national dataset and run the full refresh on it."""
    spec = load_jobspec(demo_spec_path(), root=root)
    t0 = time.time()
    execute(
        spec, RefreshOptions(scheduler=None, n_workers=workers, force=force, progress=not quiet)
    )
    print_next_steps(spec, time.time() - t0)


def print_next_steps(spec, seconds: float) -> None:
    """Where every output is, what it holds, and how to open the explorer and the report."""
    o = spec.outputs
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"\nDemo finished in {seconds:.0f}s. Everything is under {o.root}:")
    rows = [
        ("synthetic inputs", o.synth, "generated extracts + planted truth"),
        ("store", o.store, "validated records by LA (quarantine inside)"),
        ("cube", o.cube, "the all-LA profile cube (zarr; NOT disclosure-controlled)"),
        ("export", o.export, "disclosure-controlled tables + ACRO results.json + checksums"),
        ("plots", o.plots, f"comparison plots ({_view(spec.plots.safe)})"),
        (
            "report",
            o.report and o.report / "index.html",
            f"report pack ({_view(spec.report.safe)})",
        ),
        ("run manifest", o.root / LATEST_FILE, "inputs, config, rows and timings per stage"),
    ]
    for name, path, what in rows:
        if path is not None:
            console.print(f"  {name:<17} {path}\n  {'':<17} {what}")
    console.print(
        "Open the explorer (then browse to http://127.0.0.1:5006/):\n"
        f"  lds-dask explore {o.cube} --safe"
    )
    if o.report is not None:
        console.print(f"Open the report pack:\n  {(o.report / 'index.html').resolve().as_uri()}")


def _view(safe: bool) -> str:
    return "disclosure-controlled view" if safe else "NOT disclosure-controlled"
