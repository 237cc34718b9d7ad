"""Running cube tasks: on a Dask client when given one, else in this process.

The cube's passes are maps over LA bundles plus small reductions. ``TaskRunner`` hides
whether they run as Dask futures (the national refresh) or as plain calls (tests, tiny
stores), so the algorithm is written once. Results stay on the workers until gathered.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any


class TaskRunner:
    """Map functions over items on a ``distributed.Client`` or in-process."""

    def __init__(self, client=None, progress: bool = False):
        self.client = client
        self.progress = progress

    def n_threads(self) -> int:
        """Task slots: worker threads of the client's cluster, 1 in-process."""
        if self.client is None:
            return 1
        return max(1, sum(self.client.nthreads().values()))

    def map(self, fn: Callable, items: Sequence, *args, label: str = "", **kwargs) -> list:
        """``fn(item, *args, **kwargs)`` for each item; returns handles (futures or values)."""
        if self.client is None:
            return [fn(item, *args, **kwargs) for item in _progress(items, label, self.progress)]
        futures = self.client.map(
            fn,
            items,
            *[[a] * len(items) for a in args],
            key=_keys(fn, label, len(items)),
            pure=False,
            **kwargs,
        )
        if self.progress:
            self._show(futures, label)
        return futures

    def split(self, handles: list, n_parts: int) -> list[list]:
        """Part ``b`` of every handle, for each b: handles must hold sequences of n_parts."""
        if self.client is None:
            return [[h[b] for h in handles] for b in range(n_parts)]
        return [
            [self.client.submit(operator.getitem, h, b, pure=False) for h in handles]
            for b in range(n_parts)
        ]

    def share(self, value: Any) -> Any:
        """Ship a value every task needs once (broadcast), not once per task."""
        if self.client is None:
            return value
        return self.client.scatter(value, broadcast=True, hash=False)

    def scatter(self, items: list) -> list:
        """Move large arguments to the workers first, so task graphs stay small."""
        return items if self.client is None else self.client.scatter(items, hash=False)

    def gather(self, handles: list) -> list:
        """The results behind the handles, in order."""
        return handles if self.client is None else self.client.gather(handles)

    def _show(self, futures: list, label: str) -> None:
        from distributed import as_completed

        for _ in _progress(as_completed(futures), label, True, total=len(futures)):
            pass


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
