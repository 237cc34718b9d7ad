"""Running tasks: on a Dask client when given one, else in this process.

Ingest and the cube are maps over files or LA bundles plus small reductions. ``TaskRunner``
hides whether they run as Dask futures (the national refresh) or as plain calls (tests, tiny
stores), so each algorithm is written once. Results stay on the workers until gathered;
:meth:`TaskRunner.split` and :meth:`TaskRunner.pick` route parts of them to later tasks
worker-to-worker, without a trip through the client.

When waiting fails (a task raised, or the user pressed Ctrl-C), every future of the runner
that is still referenced is cancelled, and the runner waits for the tasks already running
to end (:meth:`TaskRunner.settle`), so no orphan task keeps writing after the caller has
cleaned up.

On Dask a task never raises: :func:`run_task` returns a :class:`TaskFailure` instead,
holding the error's class and its one-line message, and the runner raises it on the client.
A raising task would make the worker log "Compute Failed" with the exception's text (a
parser's text quotes the record it failed on), the task's arguments and the traceback. An
exception that is not an expected failure (:class:`~lds_dask.runtime.errors.LdsError`) is a
bug and travels as its type and code location only. Workers that die (killed, out of
memory) end the run with :class:`~lds_dask.runtime.errors.WorkersLostError`. In-process,
tasks are plain calls and raise as they would anywhere.
"""

from __future__ import annotations

import functools
import operator
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lds_dask.runtime.errors import (
    LdsError,
    UnexpectedError,
    WorkersLostError,
    describe_unexpected,
)

SETTLE_SECONDS = 300.0  # the longest wait for cancelled tasks that are still running
RUNNING_STATES = frozenset({"executing", "long-running", "cancelled", "resumed"})


@dataclass(frozen=True)
class TaskFailure:
    """What a Dask task returns instead of raising: the error's class and message."""

    kind: type[LdsError]
    message: str

    def error(self) -> LdsError:
        return self.kind.__new__(self.kind, self.message)  # args only: no custom __init__


def run_task(fn: Callable, *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` on a worker, with any failure returned as a TaskFailure.

    A task given a failed task's result returns that failure (the first), so a failure
    travels down the graph to whatever the client gathers."""
    failed = _first_failure(args) or _first_failure(kwargs.values())
    if failed is not None:
        return failed
    try:
        return fn(*args, **kwargs)
    except LdsError as exc:
        return TaskFailure(type(exc), str(exc))
    except Exception as exc:
        return TaskFailure(UnexpectedError, describe_unexpected(exc, "a Dask task"))


def _first_failure(values, depth: int = 2) -> TaskFailure | None:
    """The first TaskFailure among ``values`` or inside their lists, tuples and dicts."""
    for v in values:
        if isinstance(v, TaskFailure):
            return v
        if depth and isinstance(v, list | tuple | dict):
            found = _first_failure(v.values() if isinstance(v, dict) else v, depth - 1)
            if found is not None:
                return found
    return None


def raise_failures(values: Sequence) -> Sequence:
    """``values``, unless one is a TaskFailure: then its error, raised here."""
    failed = _first_failure(values, depth=0)
    if failed is not None:
        raise failed.error()
    return values


class TaskRunner:
    """Map functions over items on a ``distributed.Client`` or in-process.

    With ``progress``, :meth:`map` shows a progress bar and returns once every task is done,
    raising the first task error as soon as it happens.
    """

    def __init__(self, client=None, progress: bool = False):
        self.client = client
        self.progress = progress
        self._live: weakref.WeakSet = weakref.WeakSet()  # futures made here, still referenced
        self._keys: set = set()  # keys of every task made here, to see which still run
        self._cancelled = False

    def n_threads(self) -> int:
        """Task slots: worker threads of the client's cluster, 1 in-process."""
        if self.client is None:
            return 1
        return max(1, sum(self.client.nthreads().values()))

    def map(self, fn: Callable, items: Sequence, *args, label: str = "", **kwargs) -> list:
        """``fn(item, *args, **kwargs)`` for each item; returns handles (futures or values)."""
        if self.client is None:
            return [fn(item, *args, **kwargs) for item in _progress(items, label, self.progress)]
        futures = self._track(
            self.client.map(
                functools.partial(run_task, fn),
                items,
                *[[a] * len(items) for a in args],
                key=_keys(fn, label, len(items)),
                pure=False,
                **kwargs,
            )
        )
        if self.progress:
            with self._cancel_on_error():
                self._wait(futures, label)
        return futures

    def pick(self, handles: list, key: Any) -> list:
        """``h[key]`` for each handle, computed where ``h`` lives."""
        if self.client is None:
            return [h[key] for h in handles]
        if not handles:
            return []
        getitem = functools.partial(run_task, operator.getitem)
        return self._track(self.client.map(getitem, handles, [key] * len(handles), pure=False))

    def split(self, handles: list, n_parts: int) -> list[list]:
        """Part ``b`` of every handle, for each b: handles must hold sequences of n_parts."""
        return [self.pick(handles, b) for b in range(n_parts)]

    def share(self, value: Any) -> Any:
        """Ship a value every task needs once (broadcast), not once per task."""
        if self.client is None:
            return value
        return self._track([self.client.scatter(value, broadcast=True, hash=False)])[0]

    def scatter(self, items: list) -> list:
        """Move large arguments to the workers first, so task graphs stay small."""
        if self.client is None:
            return items
        return self._track(self.client.scatter(items, hash=False))

    def gather(self, handles: list, each: Callable[[int], Any] | None = None) -> list:
        """The results behind the handles, in order; cancels outstanding work on failure.

        ``each(i)`` is called as soon as handle ``i`` is done (in completion order), so the
        caller can release what that task read while the others run.
        """
        if self.client is None:
            for i in range(len(handles) if each else 0):
                each(i)
            return handles
        with self._cancel_on_error():
            if each is None:
                self._wait(handles)
                return list(raise_failures(self.client.gather(handles)))
            from distributed import as_completed

            index = {f.key: i for i, f in enumerate(handles)}
            values: list = [None] * len(handles)
            for future in as_completed(handles):
                i = index[future.key]
                values[i] = raise_failures([future.result()])[0]  # a failure, raised now
                each(i)
            return values

    def cancel(self) -> None:
        """Cancel every future of this runner that is still referenced somewhere."""
        live = list(self._live)
        self._cancelled = True
        if self.client is not None and live:
            self.client.cancel(live)

    def settle(self, timeout: float = SETTLE_SECONDS) -> None:
        """Wait (at most ``timeout``) until no worker still runs a task of this runner.

        Cancelling stops the tasks that have not started; one already running goes on to
        its end, and must not write into a temp area after the caller has removed it."""
        if self.client is None or not self._keys:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                busy = self.client.run(_running, self._keys, on_error="ignore")
            except Exception:  # the cluster is gone: nothing runs on it
                return
            if not any(isinstance(v, list) and v for v in busy.values()):
                return
            time.sleep(0.1)

    def _track(self, futures: list) -> list:
        self._live.update(futures)
        self._keys.update(f.key for f in futures)
        return futures

    @contextmanager
    def _cancel_on_error(self) -> Iterator[None]:
        """Cancel outstanding work on any failure; dead workers become WorkersLostError."""
        try:
            yield
        except BaseException as exc:
            ours = self._cancelled  # a future this runner cancelled is no lost worker
            self.cancel()
            self.settle()
            lost = None if ours else workers_lost(exc)
            if lost is not None:
                raise lost from None
            raise

    @staticmethod
    def _wait(futures: list, label: str | None = None) -> None:
        """Wait for every future (with a progress bar when labelled), raising the first
        failure as soon as it happens rather than after every task has ended. A finished
        task's result type is known without fetching it, so only a failure is fetched."""
        from distributed import as_completed

        done = as_completed(futures)
        if label is not None:
            done = _progress(done, label, True, total=len(futures))
        for future in done:
            if future.status != "finished" or future.type is TaskFailure:
                raise_failures([future.result()])


def _running(keys: set, dask_worker=None) -> list:
    """The keys among ``keys`` whose task is running on this worker (run by ``settle``)."""
    tasks = dask_worker.state.tasks
    return [k for k in keys if k in tasks and tasks[k].state in RUNNING_STATES]


def workers_lost(exc: BaseException) -> WorkersLostError | None:
    """The one-line error for a failure caused by dead workers, else None.

    ``KilledWorker``: a task's workers died too often; a cancelled future: the scheduler
    dropped the task (every worker holding it or its inputs died); a closed comm: the
    connection to the cluster went with them."""
    from concurrent.futures import CancelledError

    from distributed import KilledWorker
    from distributed.comm import CommClosedError

    if isinstance(exc, KilledWorker):
        why = "a task's worker died repeatedly (killed, or out of memory)"
    elif isinstance(exc, CancelledError | CommClosedError):
        why = f"tasks were lost with their workers ({type(exc).__name__})"
    else:
        return None
    return WorkersLostError(
        f"Dask workers were lost: {why}; the run stopped. Check the workers' memory limit "
        "and logs, then run the command again"
    )


def _keys(fn: Callable, label: str, n: int) -> list[str]:
    import uuid

    token = uuid.uuid4().hex[:8]
    return [f"{label or fn.__name__}-{token}-{i}" for i in range(n)]


def _progress(items, label: str, show: bool, total: int | None = None):
    if not show:
        yield from items
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task(label or "tasks", total=total if total is not None else len(items))
        for item in items:
            yield item
            bar.advance(task)
