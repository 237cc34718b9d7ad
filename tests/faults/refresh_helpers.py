"""Shared by the refresh, cluster and fault tests: tiny synthetic inputs, job specs written
as TOML, real ``dask scheduler`` / ``dask worker`` processes on loopback, and comparisons
of cubes and exports between runs.

Everything is deterministic: the synthetic data are seeded, and a run's results must not
depend on where it ran (LocalCluster, a real cluster, after a fault).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import xarray as xr

from lds_dask.jobspec import load_jobspec
from lds_dask.refresh import RefreshOptions, hash_tree, run_refresh

REPO = Path(__file__).resolve().parents[2]
START = dt.date(2020, 10, 5)
WEEKS = 5
SCALE = 0.0005
SEED = 7
DIRTY = 0.001
REPORT_LAS = ("E06000001", "E08000025")
_CACHE: dict[str, object] = {}


def synth_inputs(tmp_path_factory) -> Path:
    """One tiny synthetic national extract per session (5 weeks, all 309 LAs), generated
    in this process with the same parameters the reference run's synth stage uses."""
    if "synth" not in _CACHE:
        from synthetic_gen.generate import generate

        out = tmp_path_factory.mktemp("synth")
        generate(
            out, scale=SCALE, seed=SEED, start=START, weeks=WEEKS, dirty_rate=DIRTY, progress=False
        )
        _CACHE["synth"] = out
    return _CACHE["synth"]


def week_dirs(synth: Path, weeks: int = WEEKS) -> list[Path]:
    """The first ``weeks`` weekly folders of test records."""
    return sorted((synth / "test_records").glob("week=*"))[:weeks]


def spec_text(
    synth: Path | None,
    root: Path,
    weeks: int = WEEKS,
    threshold: int = 10,
    scheduler: str = "",
    n_workers: int = 2,
    report: bool = True,
    plots: bool = False,
    export: bool = True,
    bundle_mb: float = 1.0,
) -> str:
    """A tiny job spec on the session's synthetic inputs."""
    raw = ", ".join(f'"{p}"' for p in week_dirs(synth, weeks)) if synth else ""
    outputs = [f'root = "{root}"', 'store = "store"', 'cube = "cube.zarr"']
    outputs += ['export = "export"'] if export else []
    outputs += ['plots = "plots"'] if plots else []
    outputs += ['report = "report"'] if report else []
    las = ", ".join(f'"{c}"' for c in REPORT_LAS)
    if synth is None:  # generate them: the synth stage
        inputs = [
            "[synth]",
            f"scale = {SCALE}",
            f"seed = {SEED}",
            f"start = {START}",
            f"weeks = {WEEKS}",
            f"dirty_rate = {DIRTY}",
        ]
    else:
        inputs = [
            "[inputs]",
            f"raw = [{raw}]",
            f'survey = "{synth / "survey_responses"}"',
            f'ahah = "{synth / "ahah.parquet"}"',
        ]
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
            f"las = [{las}]",
            "safe = false",  # tiny data: the safe view is almost all suppressed
            "[report]",
            f"las = [{las}]",
            "[cluster]",
            f'scheduler = "{scheduler}"',
            f"n_workers = {n_workers}",
            "",
        ]
    )


def write_spec(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def refresh(spec_path: Path, **options) -> dict:
    """Run a spec in this process; returns the run manifest."""
    options.setdefault("progress", False)
    return run_refresh(load_jobspec(spec_path), RefreshOptions(**options), say=lambda _: None)


def reference_run(tmp_path_factory) -> Path:
    """The uninterrupted LocalCluster run (embedded default) that the others must equal."""
    if "reference" not in _CACHE:
        root = tmp_path_factory.mktemp("reference")
        spec = write_spec(root / "job.toml", spec_text(None, root / "out"))
        manifest = refresh(spec)
        assert manifest["status"] == "completed"
        _CACHE["reference"] = root / "out"
    return _CACHE["reference"]


# ---------------------------------------------------------------- comparisons


def cube_nodes(path: Path) -> dict[str, xr.Dataset]:
    """Every node of a cube, loaded, without attrs (provenance differs between runs)."""
    from lds_dask.cube import open_cube

    tree = open_cube(path)
    out = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False).load()
        ds.attrs = {}
        out[node.path] = ds
    return out


def assert_same_cube(a: Path, b: Path) -> None:
    """Same nodes, variables, coordinates and values (NaN equal to NaN)."""
    left, right = cube_nodes(a), cube_nodes(b)
    assert sorted(left) == sorted(right)
    for path in left:
        xr.testing.assert_equal(left[path], right[path])


PROVENANCE = ("manifest.json", "checksums/manifest.json.sha256")


def export_hashes(root: Path) -> dict[str, str]:
    """sha256 of every exported file except the provenance manifest (it holds the run's
    time and paths, so it differs between otherwise identical runs)."""
    return {k: v for k, v in hash_tree(root / "export").items() if k not in PROVENANCE}


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
        n_workers = self.n_workers
        for i in range(n_workers):
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
        self.wait_for_workers(n_workers)
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

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        deadline = time.time() + timeout
        while True:
            try:
                with Client(self.address, timeout="5s") as client:
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
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _end_group(p, signal.SIGKILL)
                p.wait(timeout=10)


def start_cluster(request, log_dir: Path, **kwargs) -> DaskProcesses:
    """Start real dask processes, ended by a finalizer even if starting fails halfway."""
    procs = DaskProcesses(log_dir, **kwargs)
    request.addfinalizer(procs.close)
    return procs.start()


def _end_group(p: subprocess.Popen, sig: int) -> None:
    """Signal the session this test started for ``p`` (its own id), never anything else."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, sig)
