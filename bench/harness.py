"""The benchmark suite: synth -> ingest -> cube -> export per scale, lds_dask against DuckDB
and polars on the same files in the same run, with 1 and 2 workers.

Every (stage, engine, workers) runs in a fresh child process (:mod:`bench.stages`) so that
memory is measured the same way for every engine: a background thread here sums the RSS of
the child and all its descendants (Dask scheduler and workers included) every 50 ms and
keeps the peak. Threads are pinned to the worker count: lds_dask gets N single-threaded
Dask workers (POLARS_MAX_THREADS=1 inside each), DuckDB ``SET threads=N``, polars
``POLARS_MAX_THREADS=N`` (and ``OMP_NUM_THREADS=N`` for everything).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.stages import ENGINES, RESULT_PREFIX, STAGES, flatten_cube, paths

BENCH_DIR = Path(__file__).resolve().parent
COLUMNS = (
    "run_date",
    "scale",
    "weeks",
    "stage",
    "engine",
    "workers",
    "records",
    "wall_s",
    "process_s",
    "records_per_s",
    "peak_rss_gb",
    "faster_baseline",
    "ratio_to_faster_baseline",
    "speedup_1_to_2",
    "status",
    "note",
)
KEY = ("scale", "weeks", "stage", "engine", "workers")
# On-disk bytes per test record for raw + store + cube + export + one baseline's output at
# once (160, measured at scale 0.01, 52 weeks, rounded up) plus ingest's transient
# uncompressed Arrow staging (about 220 bytes per valid record); the cube/export part is
# mostly fixed (area x week cells), hence the constant.
DISK_BYTES_PER_RECORD, DISK_FIXED_BYTES = 160 + 220, 4 * 2**30
RECORDS_AT_SCALE_1 = 100e6


@dataclass(frozen=True)
class BenchOptions:
    """One benchmark run. ``work``/``results`` default to bench/work and bench/results."""

    scales: tuple[float, ...] = (0.01,)
    workers: tuple[int, ...] = (1, 2)
    stages: tuple[str, ...] = STAGES
    engines: tuple[str, ...] = ENGINES
    weeks: int = 52
    seed: int = 42
    work: Path = BENCH_DIR / "work"
    results: Path = BENCH_DIR / "results"
    readme: Path | None = BENCH_DIR / "README.md"
    keep: bool = False
    plot: bool = True
    command: str = ""

    def __post_init__(self):
        bad = [s for s in self.stages if s not in STAGES]
        if bad:
            raise ValueError(f"unknown stage(s) {', '.join(bad)}: use {', '.join(STAGES)}")
        if any(w < 1 for w in self.workers) or any(s <= 0 for s in self.scales):
            raise ValueError("workers must be >= 1 and scales > 0")
        bad = [e for e in self.engines if e not in ENGINES]
        if bad:
            raise ValueError(f"unknown engine(s) {', '.join(bad)}: use {', '.join(ENGINES)}")


class PeakRss:
    """Samples one process and all its descendants in a thread: the peak of their summed
    RSS, and the CPU time of every process seen (its last sample, so exited processes keep
    theirs)."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid, self.interval, self.peak = pid, interval, 0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, root: psutil.Process) -> None:
        total = 0
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
                t = p.cpu_times()
                self._cpu[p.pid] = t.user + t.system
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                self._sample(root)
            except psutil.Error:  # the root exited
                break
            self._stop.wait(self.interval)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the tree so far, sampled now."""
        with contextlib.suppress(psutil.Error):
            self._sample(psutil.Process(self.pid))
        return sum(self._cpu.values())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def child_env(workers: int) -> dict[str, str]:
    """Thread pinning for a child: N threads for the engine (lds_dask workers pin to 1)."""
    env = dict(os.environ)
    env.update(
        POLARS_MAX_THREADS=str(workers),
        OMP_NUM_THREADS=str(workers),
        MKL_NUM_THREADS=str(workers),
        OPENBLAS_NUM_THREADS=str(workers),
    )
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(BENCH_DIR.parent), env.get("PYTHONPATH")])
    )
    return env


def failure_line(log: Path) -> str:
    """The most telling line of a failed child's stderr: the last exception line, else the
    last line (tools often end with hints after the error itself)."""
    lines = log.read_text().strip().splitlines()
    errors = [ln for ln in lines if "Error" in ln or "Exception" in ln]
    return (errors or lines or [""])[-1].strip()


def measure(stage: str, engine: str, workers: int, work: Path, opts: BenchOptions) -> dict:
    """Run one child; its timed seconds, whole-process seconds and peak tree RSS."""
    cmd = [
        sys.executable,
        "-m",
        "bench.stages",
        stage,
        engine,
        "--work",
        str(work),
        "--workers",
        str(workers),
        "--scale",
        repr(scale_of(work)),
        "--weeks",
        str(opts.weeks),
        "--seed",
        str(opts.seed),
    ]
    log = work / "logs" / f"{stage}-{engine}-w{workers}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=child_env(workers),
            cwd=BENCH_DIR.parent,
        )
        with PeakRss(proc.pid) as mem:
            out, _ = proc.communicate()
    process_s = time.perf_counter() - began
    found = [line for line in out.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode or not found:
        return {
            "status": "failed",
            "note": f"exit code {proc.returncode}: {failure_line(log)[:200]} (log: {log})",
            "process_s": round(process_s, 2),
            "peak_rss_gb": round(mem.peak / 2**30, 3),
        }
    seconds = json.loads(found[-1][len(RESULT_PREFIX) :])["seconds"]
    return {
        "status": "ok",
        "note": "",
        "wall_s": round(seconds, 3),
        "process_s": round(process_s, 2),
        "peak_rss_gb": round(mem.peak / 2**30, 3),
    }


def scale_of(work: Path) -> float:
    return float(work.name.removeprefix("scale-"))


def records_of(work: Path) -> int | None:
    """Test records (clean + dirty) generated at this scale, from the synth manifest."""
    manifest = paths(work)["raw"] / "manifest.json"
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text())["counts"]["test_records"]["rows"]


def disk_needed(scale: float, weeks: int) -> int:
    records = RECORDS_AT_SCALE_1 * scale * weeks / 52
    return int(records * DISK_BYTES_PER_RECORD + DISK_FIXED_BYTES * weeks / 52)


def check_disk(scale: float, opts: BenchOptions) -> str | None:
    """A message when the scale's work files would not fit on the work filesystem."""
    opts.work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(opts.work).free
    need = disk_needed(scale, opts.weeks)
    if need > free * 0.9:
        return (
            f"scale {scale}: skipped, needs about {need / 2**30:.0f} GB under {opts.work} "
            f"but only {free / 2**30:.0f} GB is free"
        )
    return None


def run_scale(scale: float, opts: BenchOptions, say) -> list[dict]:
    """Every stage x workers x engine at one scale, stage by stage."""
    work = opts.work / f"scale-{scale}"
    rows, broken = [], None
    for stage in opts.stages:
        for workers in opts.workers:
            for engine in opts.engines:
                row = base_row(scale, stage, engine, workers, opts)
                if broken:
                    row.update(status="skipped", note=broken)
                elif missing := missing_input(stage, engine, work):
                    row.update(status="skipped", note=missing)
                elif engine != "lds_dask" and lds_failed(rows, stage, workers):
                    row.update(status="skipped", note=f"lds_dask {stage} failed first")
                else:
                    if stage == "export" and engine != "lds_dask":
                        prepare_export_input(work)
                    row.update(measure(stage, engine, workers, work, opts))
                row["records"] = records_of(work)
                say(format_row(row))
                rows.append(row)
        if any(
            r["stage"] == stage and r["engine"] == "lds_dask" and r["status"] != "ok" for r in rows
        ):
            broken = f"lds_dask {stage} did not complete"
    return rows


def lds_failed(rows: list[dict], stage: str, workers: int) -> bool:
    """The lds_dask run just before failed (synth/ingest rewrite the baselines' inputs)."""
    return any(
        r["stage"] == stage
        and r["workers"] == workers
        and r["engine"] == "lds_dask"
        and r["status"] == "failed"
        for r in rows
    )


def base_row(scale, stage, engine, workers, opts: BenchOptions) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(
        run_date=dt.date.today().isoformat(),
        scale=scale,
        weeks=opts.weeks,
        stage=stage,
        engine=engine,
        workers=workers,
    )
    return row


def missing_input(stage: str, engine: str, work: Path) -> str | None:
    """Why a stage cannot run yet (its upstream output is absent), or None."""
    p = paths(work)
    need = {
        "synth": None,
        "ingest": p["raw"] / "manifest.json",
        "cube": p["store"] / "_manifest.json",
        "export": p["cube"],
    }[stage]
    if stage == "synth" and engine != "lds_dask":
        need = p["raw"] / "manifest.json"  # the baselines rewrite the generated files
    if need is not None and not need.exists():
        return f"no input {need.name}: run the earlier stages (or keep them with --keep)"
    if stage == "cube" and engine != "lds_dask":
        try:
            from bench import bench_cube  # noqa: F401
        except ImportError:
            return "bench/bench_cube.py is not available yet"
    return None


def prepare_export_input(work: Path) -> None:
    """Flatten the cube once (untimed) into the export baselines' parquet input."""
    p = paths(work)
    if not p["export_input"].exists():
        flatten_cube(p["cube"], p["export_input"])


def add_derived(rows: list[dict]) -> list[dict]:
    """records/s, ratio to the faster baseline, strong-scaling speed-up 1 -> 2 workers."""
    ok = {tuple(r[k] for k in KEY): r for r in rows if r["status"] == "ok"}
    for r in rows:
        r["records_per_s"] = (
            round(r["records"] / r["wall_s"]) if r["status"] == "ok" and r["records"] else None
        )
        same = [
            ok.get((r["scale"], r["weeks"], r["stage"], e, r["workers"]))
            for e in ("duckdb", "polars")
        ]
        same = [b for b in same if b]
        if r["status"] == "ok" and same:
            best = min(same, key=lambda b: b["wall_s"])
            r["faster_baseline"] = best["engine"]
            r["ratio_to_faster_baseline"] = round(r["wall_s"] / best["wall_s"], 3)
        one = ok.get((r["scale"], r["weeks"], r["stage"], r["engine"], 1))
        two = ok.get((r["scale"], r["weeks"], r["stage"], r["engine"], 2))
        if one and two:
            r["speedup_1_to_2"] = round(one["wall_s"] / two["wall_s"], 3)
    return rows


def results_path(results: Path, when: dt.date | None = None) -> Path:
    return results / f"{(when or dt.date.today()).isoformat()}.csv"


def merge_rows(path: Path, rows: list[dict]) -> list[dict]:
    """Today's earlier rows plus these; a rerun of the same key replaces the old row."""
    merged = {}
    if path.exists():
        with open(path, newline="") as f:
            for old in csv.DictReader(f):
                merged[key_of(old)] = parse_row(old)
    for r in rows:
        merged[key_of(r)] = r
    order = {s: i for i, s in enumerate(STAGES)}
    return sorted(
        merged.values(),
        key=lambda r: (
            float(r["scale"]),
            int(r["weeks"]),
            order[r["stage"]],
            int(r["workers"]),
            ENGINES.index(r["engine"]),
        ),
    )


def key_of(r: dict) -> tuple:
    return (float(r["scale"]), int(r["weeks"]), r["stage"], r["engine"], int(r["workers"]))


def parse_row(raw: dict) -> dict:
    """A CSV row back to numbers (empty cells to None)."""
    ints, floats = (
        ("weeks", "workers", "records", "records_per_s"),
        (
            "scale",
            "wall_s",
            "process_s",
            "peak_rss_gb",
            "ratio_to_faster_baseline",
            "speedup_1_to_2",
        ),
    )
    row = {k: (v if v != "" else None) for k, v in raw.items() if k in COLUMNS}
    for k in ints:
        row[k] = int(float(row[k])) if row.get(k) is not None else None
    for k in floats:
        row[k] = float(row[k]) if row.get(k) is not None else None
    return row


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {k: "" if r.get(k) is None or _nan(r.get(k)) else r[k] for k in COLUMNS}
            )


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def format_row(r: dict) -> str:
    if r["status"] != "ok":
        return f"  {r['stage']:<6} {r['engine']:<8} w={r['workers']}  {r['status']}: {r['note']}"
    return (
        f"  {r['stage']:<6} {r['engine']:<8} w={r['workers']}  {r['wall_s']:8.2f} s "
        f"(process {r['process_s']:.1f} s)  peak {r['peak_rss_gb']:.2f} GB"
    )


def run(opts: BenchOptions, say=print) -> Path:
    """Run the suite; write results/<date>.csv (+ .png, README table). Returns the CSV path."""
    from bench import report

    rows: list[dict] = []
    path = results_path(opts.results)  # named by the day the run started
    for scale in opts.scales:
        if message := check_disk(scale, opts):
            say(message)
            rows += skipped_scale(scale, message, opts)
            continue
        say(f"scale {scale} ({opts.weeks} weeks), workers {list(opts.workers)}:")
        try:
            rows += run_scale(scale, opts, say)
        finally:
            if not opts.keep:
                shutil.rmtree(opts.work / f"scale-{scale}", ignore_errors=True)
    merged = add_derived(merge_rows(path, add_derived(rows)))
    write_csv(path, merged)
    say(f"wrote {path}")
    if opts.plot and (png := report.plot(merged, path.with_suffix(".png"), say)):
        say(f"wrote {png}")
    if opts.readme:
        report.update_readme(opts.readme, merged, path, opts.command)
        say(f"updated {opts.readme}")
    return path


def skipped_scale(scale: float, message: str, opts: BenchOptions) -> list[dict]:
    rows = []
    for stage in opts.stages:
        for workers in opts.workers:
            for engine in opts.engines:
                row = base_row(scale, stage, engine, workers, opts)
                row.update(status="skipped", note=message)
                rows.append(row)
    return rows


def options_dict(opts: BenchOptions) -> dict:
    return {k: str(v) for k, v in dataclasses.asdict(opts).items()}
