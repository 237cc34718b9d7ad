"""A refresh on a REAL cluster (``dask scheduler`` + two ``dask worker`` processes on
loopback, started here) through the CLI's ``--scheduler`` gives the same cube values and
export data files as the LocalCluster reference run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lds_dask.refresh.run import LATEST_FILE
from tests.faults.refresh_helpers import (
    REPO,
    REPORT_LAS,
    assert_same_cube,
    assert_same_export,
    spec_text,
    start_cluster,
    worker_env,
    write_spec,
)

pytestmark = pytest.mark.cluster


def test_refresh_on_real_cluster_equals_local_cluster(request, reference, synth, tmp_path):
    cluster = start_cluster(request, tmp_path / "dask-logs", n_workers=2)
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "job.toml", spec_text(synth, out, report=True))
    proc = subprocess.run(
        [sys.executable, "-m", "lds_dask", "refresh", str(spec), "--scheduler", cluster.address],
        cwd=REPO,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Dask: {cluster.address} (2 workers); dashboard" in proc.stderr
    for name in ("ingest", "cube", "disclosure", "export", "report"):
        assert f"] {name}: done in" in proc.stderr
    for path in (out / "cube.zarr", out / "export", out / "report" / "index.html"):
        assert str(path) in proc.stdout  # says where every output went

    manifest = json.loads((out / LATEST_FILE).read_text())
    assert manifest["cluster"] == f"{cluster.address} (2 workers)"
    assert all(st["status"] == "ran" for st in manifest["stages"].values())
    assert manifest["stages"]["report"]["rows_out"] == len(REPORT_LAS)
    assert_same_cube(out / "cube.zarr", reference / "cube.zarr")
    assert_same_export(out, reference)
