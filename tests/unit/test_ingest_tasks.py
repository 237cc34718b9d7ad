"""The task runner ingest (and the cube) run on: a failure stops the step at once.

On Dask, the first task error is raised while other tasks are still running, and those are
cancelled, so no orphan task keeps writing into a temp area the run is deleting. A task
error reaches the client as one safe line: an expected failure as itself, anything else as
its type and code location, never its text; the workers log no "Compute Failed".
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lds_dask.contract.schemas import SchemaError
from lds_dask.runtime.errors import UnexpectedError
from lds_dask.runtime.tasks import TaskRunner

MARKER = "PERSONALMARKER0042"


def sleep_or_fail(seconds: float) -> float:
    """Fail on a negative time with a message holding a value, as a parser would."""
    if seconds < 0:
        raise ValueError(f"could not parse `{MARKER},2020-10-01` as a date")
    time.sleep(seconds)
    return seconds


def expected_failure(path: str) -> None:
    raise SchemaError(f"{path}: line 3, column person_id: unclosed quote")


def compute_failed_logs(client) -> list[str]:
    logs = client.get_worker_logs()
    return [msg for records in logs.values() for _, msg in records if "Compute Failed" in msg]


@pytest.mark.parametrize("progress", [False, True])
def test_a_failing_task_raises_at_once_and_cancels_the_rest(local_client, progress):
    runner = TaskRunner(local_client, progress=progress)
    start = time.monotonic()
    with pytest.raises(UnexpectedError, match="ValueError in a Dask task at") as caught:
        futures = runner.map(sleep_or_fail, [-1, *[2] * 6], label="sleep")
        runner.gather(futures)
    assert MARKER not in str(caught.value) and "test_ingest_tasks.py" in str(caught.value)
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


@pytest.mark.parametrize("each", [None, list.append])
def test_an_expected_failure_comes_back_as_itself_without_a_worker_log(local_client, each):
    runner = TaskRunner(local_client)
    before = len(compute_failed_logs(local_client))
    seen: list[int] = []
    with pytest.raises(SchemaError, match="^/x.csv: line 3, column person_id: unclosed quote$"):
        handles = runner.map(expected_failure, ["/x.csv"])
        runner.gather(handles, each=seen.append if each else None)
    assert len(compute_failed_logs(local_client)) == before


@pytest.mark.parametrize("later", ["pick", "map over a split"])
def test_a_failure_travels_through_later_tasks_to_the_gather(local_client, later):
    runner = TaskRunner(local_client)
    parts = runner.map(lambda x: [sleep_or_fail(x)] * 2, [0.0, -1.0])
    if later == "pick":
        handles = runner.pick(parts, 1)
    else:
        handles = runner.map(sum, [runner.split(parts, 2)[0]])
    with pytest.raises(UnexpectedError, match="ValueError"):
        runner.gather(handles)


def test_in_process_errors_are_raised_unchanged():
    with pytest.raises(ValueError, match=MARKER):
        TaskRunner().map(sleep_or_fail, [-1])


def write_late(path: str) -> None:
    """Fail at once for "fail", else write ``path`` after a second."""
    if path == "fail":
        raise SchemaError("fail: line 2, column test_id: unclosed quote")
    time.sleep(1.0)
    Path(path).write_text("late")


def test_no_task_runs_on_after_a_failure(local_client, tmp_path):
    """A task already running when another fails is waited for, so it cannot write into a
    temp area the caller removes as soon as the error reaches it."""
    runner = TaskRunner(local_client)
    late = tmp_path / "late.txt"
    with pytest.raises(SchemaError):
        runner.gather(runner.map(write_late, [str(late), "fail"]))
    assert late.exists()  # written before the error reached the caller, not after
