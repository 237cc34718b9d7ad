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
from lds_dask.cli.refresh import execute, load_spec_or_exit
from lds_dask.refresh import RefreshOptions

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
def command(root: Path, workers: int | None, force: bool, quiet: bool):
    """Generate a small synthetic national dataset and run the full refresh on it."""
    spec = load_spec_or_exit(demo_spec_path(), root)
    t0 = time.time()
    execute(
        spec, RefreshOptions(scheduler=None, n_workers=workers, force=force, progress=not quiet)
    )
    console = Console(highlight=False)
    console.print(
        f"\nDemo finished in {time.time() - t0:.0f}s. Open the explorer with:\n"
        f"  lds-dask explore {spec.outputs.cube}"
    )
    if spec.outputs.report is not None:
        console.print(f"Report pack: {spec.outputs.report / 'index.html'}")
