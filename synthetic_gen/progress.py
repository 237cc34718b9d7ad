"""Run chunk tasks on a Dask client (or in-process) behind a rich progress bar."""

from __future__ import annotations

import uuid

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _bar(progress: bool) -> Progress:
    return Progress(
        TextColumn("synth"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not progress,
        transient=False,
    )


def run_tasks(fn, world, model, tasks: list, client=None, progress: bool = True) -> list:
    """``[fn(world, model, t) for t in tasks]``, in task order, on ``client`` when given."""
    results: list = [None] * len(tasks)
    with _bar(progress) as bar:
        job = bar.add_task("chunks", total=len(tasks))
        if client is None:
            for i, task in enumerate(tasks):
                results[i] = fn(world, model, task)
                bar.advance(job)
            return results
        from distributed import as_completed

        world_f = client.scatter(world, broadcast=True)
        token = uuid.uuid4().hex[:8]
        futures = {
            client.submit(
                fn, world_f, model, t, key=f"synth-chunk-{t.index}-{token}", pure=False
            ): t.index
            for t in tasks
        }
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            fut.release()
            bar.advance(job)
    return results
