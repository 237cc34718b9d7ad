"""The refresh process SIGKILLed in the middle of an export leaves the previous export
exactly as it was; a rerun completes with the same export data as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner

from lds_dask.cli import main
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


def start_paused(sentinel, log, *args: str) -> subprocess.Popen:
    """``lds-dask ARGS`` in its own session, its export pausing after the first table."""
    with open(log, "wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.faults.pause_export", str(sentinel), *args],
            cwd=REPO,
            env=worker_env(),
            start_new_session=True,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def kill_when_exporting(sentinel, out, proc) -> list:
    """Wait until the export has written a table into its temp folder (and paused), then
    SIGKILL the process (the session this test started); the files it had written."""
    deadline = time.time() + TIMEOUT_S
    try:
        while True:
            # the stage's temp folder, and whatever export nests beside it
            written = [
                p for d in out.glob("*.export.partial-*") for p in d.rglob("*") if p.is_file()
            ]
            if sentinel.exists() and written:
                return written
            assert proc.poll() is None, f"it ended (code {proc.returncode}) before export"
            assert time.time() < deadline, "the export never started"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


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
    address = local_client.scheduler.address
    proc = start_paused(sentinel, log, "refresh", str(spec), "--quiet", "--scheduler", address)
    written = kill_when_exporting(sentinel, out, proc)
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-2000:]
    assert written  # killed with part of the new export on disk

    assert hash_tree(out / "export") == previous  # untouched, byte for byte
    assert (out / LATEST_FILE).read_text() == previous_manifest
    assert "export" not in read_state(load_jobspec(spec))  # nothing claims the new export
    assert list(out.glob("*.export.partial-*"))  # the unfinished export is only hidden
    runs = [json.loads(p.read_text())["run_id"] for p in (out / STATE_DIR).glob("2*.json")]
    assert runs == [before["run_id"]]  # the killed run recorded nothing

    rerun = refresh(spec, local_client)
    assert rerun["stages"]["export"]["status"] == "ran"
    assert rerun["stages"]["cube"]["status"] == "skipped"
    assert_same_export(out, reference)
    assert not list(out.glob(".*export*"))  # interrupted leftovers were cleared
    assert json.loads((out / LATEST_FILE).read_text())["config"]["disclosure"]["threshold"] == 10


def test_a_killed_standalone_export_leaves_a_hidden_folder_the_next_run_removes(
    reference, tmp_path
):
    """``lds-dask export`` SIGKILLed mid-write: ``--out`` is untouched (absent here), the
    hidden ``.<name>.partial-*`` folder it leaves is removed by the next export."""
    out, sentinel = tmp_path / "export", tmp_path / "export-started"
    args = ["export", "--cube", str(reference / "cube.zarr"), "--out", str(out)]
    proc = start_paused(sentinel, tmp_path / "killed-export.log", *args)
    assert kill_when_exporting(sentinel, tmp_path, proc)  # some tables were written
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and len(list(tmp_path.glob(".export.partial-*"))) == 1

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert not list(tmp_path.glob(".export*")) and (out / "manifest.json").is_file()
