"""Shared by the refresh, cluster and fault tests: one tiny job, one session-wide reference
run of it, job specs written as TOML, real ``dask scheduler`` / ``dask worker`` processes on
loopback, and comparisons of cubes and exports between runs.

Speed: the session runs the full tiny job once (:func:`reference_run`, every stage, on one
shared LocalCluster, :func:`shared_client`); the other tests read its synthetic inputs and
start from a copy of its outputs (:func:`copy_completed_run`) where they only need a
completed run to start from. The fixtures in ``tests/{integration,faults}/conftest.py``
wrap these functions; the module cache makes both folders share one instance.

Determinism: the synthetic data are seeded, and a run's results must not depend on where it
ran (LocalCluster, a real cluster, after a fault). Runs are compared by cube values and by
export *data* files (:func:`export_data_hashes`): the export's provenance (``manifest.json``
and the ACRO ``results.json``) carries the run's time, so it is compared without it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import xarray as xr

from lds_dask.refresh.jobspec import load_jobspec
from lds_dask.refresh.run import LATEST_FILE, STATE_DIR, RefreshOptions, hash_tree, run_refresh

REPO = Path(__file__).resolve().parents[2]
START = dt.date(2020, 10, 5)
WEEKS = 4
SCALE = 0.0005
SEED = 7
DIRTY = 0.001
PLOT_LAS = ("E08000025",)  # Birmingham: the biggest LA, so the safe view shows something
REPORT_LAS = ("E06000001", "E08000025")
N_WORKERS = 2
_CACHE: dict[str, object] = {}


# ---------------------------------------------------------------- the tiny job


def spec_text(
    synth: Path | None,
    root: Path,
    weeks: int = WEEKS,
    threshold: int = 10,
    scheduler: str = "",
    n_workers: int = N_WORKERS,
    report: bool = False,
    plots: bool = False,
    export: bool = True,
    bundle_mb: float = 1.0,
) -> str:
    """The tiny job spec: [synth] when ``synth`` is None, else [inputs] naming its files."""
    outputs = [f'root = "{root}"', 'store = "store"', 'cube = "cube.zarr"']
    outputs += ['export = "export"'] if export else []
    outputs += ['plots = "plots"'] if plots else []
    outputs += ['report = "report"'] if report else []
    if synth is None:  # generate them: the synth stage
        inputs = ["[synth]", f"scale = {SCALE}", f"seed = {SEED}", f"start = {START}"]
        inputs += [f"weeks = {WEEKS}", f"dirty_rate = {DIRTY}"]
    else:
        raw = ", ".join(f'"{p}"' for p in week_dirs(synth, weeks))
        inputs = ["[inputs]", f"raw = [{raw}]"]
        inputs += [f'survey = "{synth / "survey_responses"}"', f'ahah = "{synth / "ahah.parquet"}"']
    return "\n".join(
        [
            "[job]",
            'name = "tiny"',
            *inputs,
            "[outputs]",
            *outputs,
            "[cube]",
            f"bundle_mb = {bundle_mb}",
            "[disclosure]",
            f"threshold = {threshold}",
            "[export]",
            'formats = ["csv", "parquet"]',
            "[plots]",
            f"las = [{_codes(PLOT_LAS)}]",
            'formats = ["html"]',
            "[report]",
            f"las = [{_codes(REPORT_LAS)}]",
            "[cluster]",
            f'scheduler = "{scheduler}"',
            f"n_workers = {n_workers}",
            "",
        ]
    )


def _codes(codes: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in codes)


def week_dirs(synth: Path, weeks: int = WEEKS) -> list[Path]:
    """The first ``weeks`` weekly folders of test records."""
    return sorted((synth / "test_records").glob("week=*"))[:weeks]


def write_spec(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def refresh(spec_path: Path, client=None, **options) -> dict:
    """Run a spec in this process (on ``client`` if given); returns the run manifest."""
    options.setdefault("progress", False)
    return run_refresh(
        load_jobspec(spec_path), RefreshOptions(**options), say=lambda _: None, client=client
    )


# ---------------------------------------------------------------- session-wide runs


def shared_client(request):
    """One LocalCluster (as the refresh makes it: ``lds_dask.runtime.cluster.get_client``) for
    every in-process refresh of the session; closed when the session ends."""
    if "client" not in _CACHE:
        from lds_dask.runtime.cluster import get_client

        ctx = get_client(n_workers=N_WORKERS, quiet=True)
        _CACHE["client"] = ctx.__enter__()
        request.addfinalizer(lambda: _close_shared_client(ctx))
    return _CACHE["client"]


def _close_shared_client(ctx) -> None:
    if _CACHE.pop("client", None) is not None:
        ctx.__exit__(None, None, None)


def reference_run(tmp_path_factory, client) -> Path:
    """The uninterrupted run of the whole tiny job (synth -> ... -> plots, report) on a
    LocalCluster: every other run must equal it. Returns its output root."""
    if "reference" not in _CACHE:
        root = tmp_path_factory.mktemp("reference")
        spec = write_spec(root / "job.toml", spec_text(None, root / "out", plots=True, report=True))
        manifest = refresh(spec, client=client)
        assert manifest["status"] == "completed"
        _CACHE["reference"] = root / "out"
    return _CACHE["reference"]


def synth_inputs(reference: Path) -> Path:
    """The reference run's synthetic extracts (read-only: every test reads the same files)."""
    return reference / "synth"


def copy_completed_run(reference: Path, out: Path) -> Path:
    """A completed run to start from: the reference's store, cube, export, refresh state and
    latest run manifest copied to ``out``. A spec on :func:`synth_inputs` with the same [cube] table then finds
    nothing new to ingest and skips the cube (its fingerprint reads the store manifest)."""
    out.mkdir(parents=True)
    for name in ("store", "cube.zarr", "export"):
        shutil.copytree(reference / name, out / name)
    (out / STATE_DIR).mkdir()
    shutil.copy2(reference / STATE_DIR / "state.json", out / STATE_DIR / "state.json")
    shutil.copy2(reference / LATEST_FILE, out / LATEST_FILE)
    return out


# ---------------------------------------------------------------- comparisons


def cube_nodes(path: Path) -> dict[str, xr.Dataset]:
    """Every node of a cube, loaded; node attrs dropped (provenance: store hash and time),
    variable attrs (units, long names) kept."""
    from lds_dask.cube.build import open_cube

    tree = open_cube(path)
    out = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False).load()
        ds.attrs = {}
        out[node.path] = ds
    return out


def assert_same_cube(a: Path, b: Path) -> None:
    """Same nodes, variables, coordinates, dtypes, variable attrs and values (NaN == NaN)."""
    left, right = cube_nodes(a), cube_nodes(b)
    assert sorted(left) == sorted(right)
    for path in left:
        xr.testing.assert_identical(left[path], right[path])


DATA_SUFFIXES = (".csv", ".parquet", ".xlsx")


def export_data_hashes(root: Path) -> dict[str, str]:
    """sha256 of every exported DATA file (the tables, csv/parquet/xlsx) and its checksum
    file. Provenance files are left out on purpose: ``manifest.json`` and ``results.json``
    record when the export ran, so they differ between otherwise identical runs (see
    :func:`export_results_untimed` for the latter)."""
    hashes = hash_tree(root / "export")
    data = {k for k in hashes if k.endswith(DATA_SUFFIXES)}
    checksums = {f"checksums/{k}.sha256" for k in data}
    return {k: v for k, v in hashes.items() if k in data | checksums}


def export_results_untimed(root: Path) -> dict:
    """The ACRO ``results.json`` without its per-output ``timestamp`` values."""

    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k != "timestamp"}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return strip(json.loads((root / "export" / "results.json").read_text()))


def assert_same_export(a: Path, b: Path) -> None:
    """Same file names; same data bytes; same ACRO results apart from their times."""
    assert sorted(hash_tree(a / "export")) == sorted(hash_tree(b / "export"))
    left = export_data_hashes(a)
    assert len(left) >= 10 and left == export_data_hashes(b)
    assert export_results_untimed(a) == export_results_untimed(b)


# ---------------------------------------------------------------- real dask processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(
        os.environ,
        POLARS_MAX_THREADS="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    return {**env, **(extra or {})}


class DaskProcesses:
    """A real ``dask scheduler`` and ``n`` ``dask worker`` processes on 127.0.0.1.

    Each process is started in its own session, so :meth:`close` ends exactly the
    processes (and the worker subprocesses their nannies spawned) that this object started.
    """

    def __init__(
        self,
        log_dir: Path,
        n_workers: int = 2,
        preload: str | None = None,
        env: dict[str, str] | None = None,
    ):
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.log_dir, self.env = log_dir, worker_env(env)
        self.n_workers, self.preload = n_workers, preload
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> DaskProcesses:
        """Start the scheduler, then the workers; return when all workers have registered."""
        self._start(
            "scheduler",
            ["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
        )
        extra = ["--preload", self.preload] if self.preload else []
        for i in range(self.n_workers):
            self._start(
                f"worker{i}",
                [
                    "worker",
                    self.address,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                    *extra,
                ],
            )
        self.wait_for_workers(self.n_workers)
        return self

    def _start(self, name: str, args: list[str]) -> None:
        with open(self.log_dir / f"{name}.log", "wb") as log:  # the child keeps its own fd
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dask", *args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,
                )
            )

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        from distributed import Client

        deadline = time.time() + timeout
        while True:
            dead = [p.args for p in self.procs if p.poll() is not None]
            assert not dead, f"dask process ended early: {dead} (logs in {self.log_dir})"
            try:
                with Client(self.address, timeout="10s") as client:
                    client.wait_for_workers(n, timeout=max(1, deadline - time.time()))
                    return
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)

    def close(self) -> None:
        for p in reversed(self.procs):
            _end_group(p, signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _end_group(p, signal.SIGKILL)
                p.wait(timeout=15)


def start_cluster(request, log_dir: Path, **kwargs) -> DaskProcesses:
    """Start real dask processes, ended by a finalizer even if starting fails halfway."""
    procs = DaskProcesses(log_dir, **kwargs)
    request.addfinalizer(procs.close)
    return procs.start()


def _end_group(p: subprocess.Popen, sig: int) -> None:
    """Signal the session this test started for ``p`` (its own id), never anything else."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, sig)
