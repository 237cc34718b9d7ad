"""Dask client set-up: an existing scheduler when given, else an embedded LocalCluster.

The address comes from ``--scheduler`` or ``DASK_SCHEDULER_ADDRESS``. A LocalCluster uses
one single-threaded worker process per core, and pins polars to one thread per worker
(``POLARS_MAX_THREADS=1``), so parallelism comes from Dask and scaling is honest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

from lds_dask.runtime.errors import BadInputError

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


@contextmanager
def get_client(
    scheduler: str | None = None,
    n_workers: int | None = None,
    memory_limit: str | None = None,
    quiet: bool = False,
) -> Iterator:
    """Yield a ``distributed.Client``: connected to ``scheduler`` or to a new LocalCluster."""
    from distributed import Client, LocalCluster

    address = scheduler or os.environ.get(SCHEDULER_ENV)
    if address:
        with connect(address) as client:
            _say(quiet, f"Dask: connected to {address}; dashboard {client.dashboard_link}")
            yield client
        return
    n = n_workers or default_workers()
    limit = memory_limit or f"{int(psutil.virtual_memory().total * 0.8 / n / 2**20)}MiB"
    env = {"POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with (
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            memory_limit=limit,
            dashboard_address=":0",
            env=env,
        ) as cluster,
        Client(cluster) as client,
    ):
        _say(quiet, f"Dask: LocalCluster with {n} worker(s); dashboard {client.dashboard_link}")
        yield client


def connect(address: str):
    """A client of the scheduler at ``address``; one that cannot be reached is bad input."""
    from distributed import Client

    try:
        return Client(address, timeout="30s")
    except OSError as exc:  # a timeout or a refused connection
        raise BadInputError(
            f"cannot connect to the Dask scheduler at {address} ({type(exc).__name__}); "
            f"check --scheduler or {SCHEDULER_ENV}"
        ) from None


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        from rich.console import Console

        Console(stderr=True).print(text, highlight=False)
