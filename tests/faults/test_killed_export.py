"""The refresh process SIGKILLed in the middle of an export leaves the previous export
exactly as it was; a rerun completes with the same files as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from lds_dask.jobspec import load_jobspec
from lds_dask.refresh import LATEST_FILE, hash_tree, read_state
from tests.faults.refresh_helpers import (
    REPO,
    export_hashes,
    reference_run,
    refresh,
    spec_text,
    synth_inputs,
    worker_env,
    write_spec,
)


def wait_for(path, proc, timeout=240):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, "the refresh ended before export started"
        assert time.time() < deadline, "export never started"
        time.sleep(0.05)


def test_kill_mid_export_keeps_previous_outputs_and_rerun_matches(tmp_path_factory, tmp_path):
    reference = reference_run(tmp_path_factory)  # threshold 10, never interrupted
    synth, out = synth_inputs(tmp_path_factory), tmp_path / "out"
    spec = tmp_path / "job.toml"
    refresh(write_spec(spec, spec_text(synth, out, threshold=5, report=False)))
    previous = hash_tree(out / "export")
    previous_manifest = (out / LATEST_FILE).read_text()

    write_spec(spec, spec_text(synth, out, threshold=10, report=False, n_workers=1))
    sentinel = tmp_path / "export-started"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.faults.pause_export",
            str(sentinel),
            "refresh",
            str(spec),
            "--quiet",
        ],
        cwd=REPO,
        env=worker_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(sentinel, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the refresh and the LocalCluster it started
        proc.wait(timeout=30)

    assert hash_tree(out / "export") == previous  # untouched, byte for byte
    assert (out / LATEST_FILE).read_text() == previous_manifest
    assert "export" not in read_state(load_jobspec(spec))  # nothing claims the new export
    assert list(out.glob("*.export.tmp-*"))  # the unfinished export is only hidden

    rerun = refresh(spec)
    assert rerun["stages"]["export"]["status"] == "ran"
    assert rerun["stages"]["cube"]["status"] == "skipped"
    assert export_hashes(out) == export_hashes(reference)
    assert not list(out.glob(".*export*"))  # interrupted leftovers were cleared
    assert json.loads((out / LATEST_FILE).read_text())["config"]["disclosure"]["threshold"] == 10
