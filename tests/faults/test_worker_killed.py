"""A worker process killed (SIGKILL) while a cube task runs on it: Dask reschedules the
task on the surviving (or restarted) worker and the cube equals the reference run's."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest

from tests.faults.refresh_helpers import (
    assert_same_cube,
    refresh,
    spec_text,
    start_cluster,
    write_spec,
)

pytestmark = pytest.mark.cluster
WINDOW_S = 300  # the refresh must reach the cube within this (the machine may be loaded)


class Killer(threading.Thread):
    """SIGKILL, once, a worker process on which a cube counting task is running.

    Only a descendant of the dask processes this test started is ever signalled."""

    def __init__(self, sentinels, ours: set[int]):
        super().__init__(daemon=True)
        self.sentinels, self.ours = sentinels, ours
        self.killed: tuple[int, str] | None = None
        self.stop = threading.Event()

    def run(self):
        deadline = time.time() + WINDOW_S
        while not self.stop.is_set() and time.time() < deadline:
            for marker in self.sentinels.glob("running-*"):
                pid, bundle = marker.name.split("-")[1:3]
                if self._kill(int(pid)):
                    self.killed = (int(pid), bundle)
                    return
            time.sleep(0.01)

    def _kill(self, pid: int) -> bool:
        descendants = {c.pid for p in self.ours for c in psutil.Process(p).children(recursive=True)}
        if pid not in descendants:
            return False
        os.kill(pid, signal.SIGKILL)
        return True


def test_worker_killed_mid_cube_gives_identical_cube(request, reference, synth, tmp_path):
    sentinels = tmp_path / "sentinels"
    sentinels.mkdir()
    cluster = start_cluster(
        request,
        tmp_path / "logs",
        n_workers=2,
        preload="tests.faults.slow_cube_preload",
        env={"LDS_FAULT_SENTINELS": str(sentinels), "LDS_FAULT_DELAY": "1.0"},
    )
    spec = write_spec(tmp_path / "job.toml", spec_text(synth, tmp_path / "out", export=False))
    killer = Killer(sentinels, {p.pid for p in cluster.procs})
    killer.start()
    try:
        manifest = refresh(spec, scheduler=cluster.address)
    finally:
        killer.stop.set()
        killer.join(timeout=5)
    assert manifest["status"] == "completed"
    assert killer.killed is not None, "no cube task was seen running"
    pid, bundle = killer.killed
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    starts = [p.name for p in sentinels.glob(f"start-*-{bundle}-*")]
    assert len(starts) >= 2, "the killed task was not run again"
    assert not list(sentinels.glob("running-*-*")) or all(
        m.name.split("-")[1] == str(pid) for m in sentinels.glob("running-*")
    )  # only the killed task never finished
    assert_same_cube(tmp_path / "out" / "cube.zarr", reference / "cube.zarr")
