"""The ``lds-dask`` command line. Each command lives in its own module in this package.

Commands are imported lazily, so ``lds-dask --help`` stays fast and a command whose
optional extra is not installed fails with a message naming the extra.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import NoReturn

import click

from lds_dask import __version__
from lds_dask.contract import refdata
from lds_dask.runtime.errors import LdsError, WriteFailedError, exit_code_of, one_line


def cannot_write(exc: OSError, fallback, then: str = "") -> WriteFailedError:
    """``<path>: cannot write (<reason>)[; then]`` for an OSError (full disk, a path under
    a file), the one-line form of a write failure; never a traceback."""
    text = f"{exc.filename or fallback}: cannot write ({exc.strerror or exc})"
    return WriteFailedError(f"{text}; {then}" if then else text)


def exits_on_error(command: Callable) -> Callable:
    """Every command's one error path: a failure ends as ``error: <one line>`` on stderr
    and its exit code (:mod:`lds_dask.runtime.errors`), never a traceback. Click's own
    usage errors (exit 2) and Ctrl-C pass through."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            fail(exc)

    run.exits_on_error = True  # checked by a test: every command has this one error path
    return run


def fail(exc: Exception) -> NoReturn:
    """Print ``error: <one line>`` to stderr and exit with the error's code. An expected
    failure's notes (where a run's manifest is) follow on their own lines; a bug's are
    not shown, as they were not written here. A bare OSError with a path is a failed write."""
    notes = getattr(exc, "__notes__", ())
    if isinstance(exc, OSError) and exc.filename:
        exc = cannot_write(exc, exc.filename)
    click.echo(f"error: {one_line(exc)}", err=True)
    for note in notes if isinstance(exc, LdsError) else ():
        click.echo(note, err=True)
    sys.exit(int(exit_code_of(exc)))


# command name -> (module in lds_dask.cli, one-line help, extra it needs)
COMMANDS = {
    "demo": (
        "demo",
        "Generate a small synthetic national dataset and run the full refresh.",
        "viz",
    ),
    "refresh": (
        "refresh",
        "Run a job spec: ingest, cube, disclosure, export, plots, report.",
        "viz",
    ),
    "synth": (
        "synth",
        "Generate synthetic national Test and Trace extracts with a planted truth.",
        None,
    ),
    "validate": ("validate", "Validate a CSV/parquet file or directory against a schema.", None),
    "ingest": ("ingest", "Validate, quarantine and partition raw extracts into the store.", None),
    "cube": ("cube", "Build the all-LA profile cube (xarray on zarr) from a store.", None),
    "export": ("export", "Export disclosure-controlled aggregates with ACRO evidence.", None),
    "plots": ("plots", "Write comparison plots for one LA (HTML/PNG).", "viz"),
    "explore": ("explore", "Serve the interactive cube explorer in the browser.", "viz"),
    "report": ("report", "Build the all-LA HTML report pack in parallel.", "viz"),
    "bench": ("bench", "Benchmark the pipeline against DuckDB and polars.", "bench"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, help_text, extra = COMMANDS[name]
        try:
            mod = importlib.import_module(f"lds_dask.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("lds_dask"):
                return _missing(name, help_text, f"not available in this build ({exc.name})")
            hint = f"pip install 'lds-dask[{extra}]'" if extra else "reinstall lds-dask"
            return _missing(name, help_text, f"needs {exc.name}: {hint}")
        return mod.command

    def format_commands(self, ctx, formatter):
        rows = [(name, help_text) for name, (_, help_text, _) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _missing(name: str, help_text: str, why: str) -> click.Command:
    @click.command(name, help=help_text, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def stub(args):
        raise click.ClickException(f"{name} {why}")

    return stub


def _version_text() -> str:
    return f"lds-dask {__version__}\n\nReference data: {refdata.ATTRIBUTION}"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, message=_version_text())
def main():
    """lds-dask: all-LA COVID-19 testing profiles from NHS Test and Trace records.

    Typical run: `lds-dask demo`, or `lds-dask refresh jobs/national_refresh.toml`.
    """
