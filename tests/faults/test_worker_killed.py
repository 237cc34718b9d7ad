"""A worker process killed (SIGKILL) while cube tasks run on it: Dask reschedules its
tasks on the surviving / restarted worker and the cube equals a clean run's."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest

from lds_dask.cube_store import bundle_las, store_la_codes
from tests.faults.refresh_helpers import (
    assert_same_cube,
    reference_run,
    refresh,
    spec_text,
    start_cluster,
    synth_inputs,
    write_spec,
)

pytestmark = pytest.mark.cluster
BUNDLE_MB = 1.0


class Killer(threading.Thread):
    """Kill the worker process of the first cube task to announce itself, once."""

    def __init__(self, sentinels):
        super().__init__(daemon=True)
        self.sentinels, self.killed_pid, self.stop = sentinels, None, threading.Event()

    def run(self):
        while not self.stop.is_set():
            started = sorted(self.sentinels.iterdir(), key=lambda p: p.stat().st_mtime)
            if started:
                self.killed_pid = int(started[0].name.split("-")[0])
                os.kill(self.killed_pid, signal.SIGKILL)  # a worker this test's nanny started
                return
            time.sleep(0.02)


def test_worker_killed_mid_cube_gives_identical_cube(request, tmp_path_factory, tmp_path):
    reference = reference_run(tmp_path_factory)
    sentinels = tmp_path / "sentinels"
    sentinels.mkdir()
    cluster = start_cluster(
        request,
        tmp_path / "logs",
        n_workers=2,
        preload="tests.faults.slow_cube_preload",
        env={"LDS_FAULT_SENTINELS": str(sentinels), "LDS_FAULT_DELAY": "1.0"},
    )
    spec = write_spec(
        tmp_path / "job.toml",
        spec_text(
            synth_inputs(tmp_path_factory),
            tmp_path / "out",
            export=False,
            report=False,
            bundle_mb=BUNDLE_MB,
        ),
    )
    killer = Killer(sentinels)
    killer.start()
    try:
        manifest = refresh(spec, scheduler=cluster.address)
    finally:
        killer.stop.set()
    assert manifest["status"] == "completed"
    assert killer.killed_pid is not None and not psutil.pid_exists(killer.killed_pid)
    store = tmp_path / "out" / "store"
    n_bundles = len(bundle_las(store, store_la_codes(store), int(BUNDLE_MB * 2**20)))
    assert n_bundles >= 3
    # the killed task ran again elsewhere: more task starts than bundles
    assert len(list(sentinels.iterdir())) > n_bundles
    assert_same_cube(tmp_path / "out" / "cube.zarr", reference / "cube.zarr")
