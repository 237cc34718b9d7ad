"""The refresh process SIGKILLed in the middle of an export leaves the previous export
exactly as it was; a rerun completes with the same export data as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from lds_dask.refresh.jobspec import load_jobspec
from lds_dask.refresh.run import LATEST_FILE, STATE_DIR, hash_tree, read_state
from tests.faults.refresh_helpers import (
    REPO,
    assert_same_export,
    copy_completed_run,
    refresh,
    spec_text,
    worker_env,
    write_spec,
)

TIMEOUT_S = 300  # to reach the export (generous: the machine may be loaded)


def wait_for_export_files(sentinel, out, proc) -> list:
    """Wait until the export has written a table into its temp folder (and paused)."""
    deadline = time.time() + TIMEOUT_S
    while True:
        # the stage's temp folder, and whatever export nests beside it
        written = [p for d in out.glob("*.export.tmp-*") for p in d.rglob("*") if p.is_file()]
        if sentinel.exists() and written:
            return written
        assert proc.poll() is None, f"the refresh ended (code {proc.returncode}) before export"
        assert time.time() < deadline, "the export never started"
        time.sleep(0.05)


def test_kill_mid_export_keeps_previous_outputs_and_rerun_matches(
    reference, synth, local_client, tmp_path
):
    out = copy_completed_run(reference, tmp_path / "out")  # threshold 10, never interrupted
    spec = tmp_path / "job.toml"
    before = refresh(write_spec(spec, spec_text(synth, out, threshold=5)), local_client)
    assert before["stages"]["export"]["status"] == "ran"
    assert before["stages"]["cube"]["status"] == "skipped"
    previous = hash_tree(out / "export")
    previous_manifest = (out / LATEST_FILE).read_text()

    write_spec(spec, spec_text(synth, out, threshold=10))
    sentinel, log = tmp_path / "export-started", tmp_path / "killed-refresh.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.pause_export", str(sentinel), "refresh"]
            + [str(spec), "--quiet", "--scheduler", local_client.scheduler.address],
            cwd=REPO,
            env=worker_env(),
            start_new_session=True,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        written = wait_for_export_files(sentinel, out, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the refresh process this test started
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-2000:]
    assert written  # killed with part of the new export on disk

    assert hash_tree(out / "export") == previous  # untouched, byte for byte
    assert (out / LATEST_FILE).read_text() == previous_manifest
    assert "export" not in read_state(load_jobspec(spec))  # nothing claims the new export
    assert list(out.glob("*.export.tmp-*"))  # the unfinished export is only hidden
    runs = [json.loads(p.read_text())["run_id"] for p in (out / STATE_DIR).glob("2*.json")]
    assert runs == [before["run_id"]]  # the killed run recorded nothing

    rerun = refresh(spec, local_client)
    assert rerun["stages"]["export"]["status"] == "ran"
    assert rerun["stages"]["cube"]["status"] == "skipped"
    assert_same_export(out, reference)
    assert not list(out.glob(".*export*"))  # interrupted leftovers were cleared
    assert json.loads((out / LATEST_FILE).read_text())["config"]["disclosure"]["threshold"] == 10
