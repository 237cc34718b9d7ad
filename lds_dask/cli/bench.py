"""``lds-dask bench``: the benchmark suite (``python -m bench`` with the same options)."""

from __future__ import annotations

import click

from lds_dask.cli import exits_on_error


@click.command("bench", context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@exits_on_error
def command(args: tuple[str, ...]):
    """Benchmark synth -> ingest -> cube -> export against DuckDB and polars.

    Options (all passed to `python -m bench`; run `lds-dask bench --help` for details):
    --scale S (repeatable), --workers N (repeatable), --stages synth,ingest,cube,export,
    --engines, --weeks, --seed, --work DIR, --results DIR, --no-readme, --no-plot, --keep.
    """
    try:
        from bench.__main__ import main
    except ImportError as exc:
        raise click.ClickException(
            f"bench needs the repository's bench/ package and its extra ({exc.name}): "
            "pip install -e '.[bench]' from a checkout"
        ) from None
    main(list(args), prog="lds-dask bench")
