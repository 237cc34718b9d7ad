"""A refresh on a REAL cluster (``dask scheduler`` + two ``dask worker`` processes on
loopback, started here) gives the same cube values and export files as the embedded
LocalCluster run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lds_dask.refresh import LATEST_FILE
from tests.faults.refresh_helpers import (
    REPO,
    assert_same_cube,
    export_hashes,
    reference_run,
    spec_text,
    start_cluster,
    synth_inputs,
    worker_env,
    write_spec,
)

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def real_cluster(request, tmp_path_factory):
    return start_cluster(request, tmp_path_factory.mktemp("dask-logs"), n_workers=2)


def test_refresh_on_real_cluster_equals_local_cluster(real_cluster, tmp_path_factory, tmp_path):
    reference = reference_run(tmp_path_factory)
    spec = write_spec(
        tmp_path / "job.toml", spec_text(synth_inputs(tmp_path_factory), tmp_path / "out")
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lds_dask",
            "refresh",
            str(spec),
            "--scheduler",
            real_cluster.address,
            "--quiet",
        ],
        cwd=REPO,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"connected to {real_cluster.address}" in proc.stderr
    assert str(tmp_path / "out" / "cube.zarr") in proc.stdout  # says where outputs went

    manifest = json.loads((tmp_path / "out" / LATEST_FILE).read_text())
    assert manifest["cluster"] == f"{real_cluster.address} (2 workers)"
    assert_same_cube(tmp_path / "out" / "cube.zarr", reference / "cube.zarr")
    hashes = export_hashes(tmp_path / "out")
    assert hashes == export_hashes(reference) and len(hashes) > 10
