"""The task runner ingest (and the cube) run on: a failure stops the step at once.

On Dask, the first task error is raised while other tasks are still running, and those are
cancelled, so no orphan task keeps writing into a temp area the run is deleting.
"""

from __future__ import annotations

import time

import pytest

from lds_dask.runtime.tasks import TaskRunner


@pytest.mark.parametrize("progress", [False, True])
def test_a_failing_task_raises_at_once_and_cancels_the_rest(local_client, progress):
    runner = TaskRunner(local_client, progress=progress)
    start = time.monotonic()
    with pytest.raises(ValueError, match="non-negative"):  # time.sleep(-1)
        futures = runner.map(time.sleep, [-1, *[2] * 6], label="sleep")
        runner.gather(futures)
    # 2 workers: waiting for the rest takes >= 6 s; a running task may hold a worker 2 s
    assert time.monotonic() - start < 5
    if not progress:
        assert {f.status for f in futures[1:]} == {"cancelled"}


def test_in_process_runner_calls_in_order_and_splits_parts():
    runner = TaskRunner()
    handles = runner.map(lambda item, k: [item * k, item * k + 1], [1, 2, 3], 10)
    assert runner.gather(handles) == [[10, 11], [20, 21], [30, 31]]
    assert runner.split(handles, 2) == [[10, 20, 30], [11, 21, 31]]
    assert runner.pick(handles, 1) == [11, 21, 31]


@pytest.mark.parametrize("dask", [False, True])
def test_gather_calls_each_once_per_task(local_client, dask):
    runner = TaskRunner(local_client if dask else None)
    seen: list[int] = []
    handles = runner.map(time.sleep, [0.3, 0.0, 0.1])
    assert runner.gather(handles, each=seen.append) == [None] * 3
    assert sorted(seen) == [0, 1, 2]
