"""Running tasks: on a Dask client when given one, else in this process.

Ingest and the cube are maps over files or LA bundles plus small reductions. ``TaskRunner``
hides whether they run as Dask futures (the national refresh) or as plain calls (tests, tiny
stores), so each algorithm is written once. Results stay on the workers until gathered;
:meth:`TaskRunner.split` and :meth:`TaskRunner.pick` route parts of them to later tasks
worker-to-worker, without a trip through the client.

When waiting fails (a task raised, or the user pressed Ctrl-C), every future of the runner
that is still referenced is cancelled, so no orphan task keeps writing after the caller has
cleaned up.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class TaskRunner:
    """Map functions over items on a ``distributed.Client`` or in-process.

    With ``progress``, :meth:`map` shows a progress bar and returns once every task is done,
    raising the first task error as soon as it happens.
    """

    def __init__(self, client=None, progress: bool = False):
        self.client = client
        self.progress = progress
        self._live: weakref.WeakSet = weakref.WeakSet()  # futures made here, still referenced

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
                fn,
                items,
                *[[a] * len(items) for a in args],
                key=_keys(fn, label, len(items)),
                pure=False,
                **kwargs,
            )
        )
        if self.progress:
            self._show(futures, label)
        return futures

    def pick(self, handles: list, key: Any) -> list:
        """``h[key]`` for each handle, computed where ``h`` lives."""
        if self.client is None:
            return [h[key] for h in handles]
        if not handles:
            return []
        return self._track(
            self.client.map(operator.getitem, handles, [key] * len(handles), pure=False)
        )

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
            if each is not None:
                from distributed import as_completed

                index = {f.key: i for i, f in enumerate(handles)}
                for future in as_completed(handles):
                    future.result()  # a task's error, raised now
                    each(index[future.key])
            return self.client.gather(handles)

    def cancel(self) -> None:
        """Cancel every future of this runner that is still referenced somewhere."""
        live = list(self._live)
        if self.client is not None and live:
            self.client.cancel(live)

    def _track(self, futures: list) -> list:
        self._live.update(futures)
        return futures

    @contextmanager
    def _cancel_on_error(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.cancel()
            raise

    def _show(self, futures: list, label: str) -> None:
        from distributed import as_completed

        with self._cancel_on_error():
            for future in _progress(as_completed(futures), label, True, total=len(futures)):
                if future.status == "error":
                    future.result()  # raise the task's error now, not after every task ends


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
