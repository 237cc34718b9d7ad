"""Benchmark ``lds-dask synth``: records/s and peak memory of all processes per scale.

    python -m bench.bench_synth --scale 0.01 [--scale 0.1 ...] [--workers 2] [--repeat 3]
        [--out DIR]

Peak memory is the maximum, over 0.2 s samples, of the summed RSS of this process and all
its children (the Dask scheduler and workers). ``cpu_s`` is the CPU time (user + system)
the same process tree spent inside the timed region, so ``records_per_cpu_s`` says how
fast the generator is per core even when other jobs share the machine (wall-clock
records/s then understates it). With ``--repeat`` each scale runs several times and a
summary line gives the best and the median. Results are printed, not committed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import PeakRss
from lds_dask.runtime.cluster import get_client
from synthetic_gen import generate


def bench_scale(scale: float, workers: int | None, out: Path, fmt: str) -> dict:
    """Generate at ``scale`` (cluster start-up excluded from the timing)."""
    with (
        get_client(n_workers=workers, quiet=True) as client,
        PeakRss(os.getpid(), interval=0.2) as tree,
    ):
        cpu0, began = tree.cpu_seconds(), time.perf_counter()
        manifest = generate(out, scale=scale, fmt=fmt, client=client, progress=False)
        seconds, cpu = time.perf_counter() - began, tree.cpu_seconds() - cpu0
        n_workers = len(client.scheduler_info()["workers"])
    c = manifest["counts"]
    records = c["test_records"]["rows"] + c["survey_responses"]["rows"]
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {
        "scale": scale,
        "workers": n_workers,
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds),
        "cpu_s": round(cpu, 2),
        "records_per_cpu_s": round(records / cpu),
        "peak_rss_gb": round(tree.peak / 2**30, 2),
        "files": c["test_records"]["files"] + c["survey_responses"]["files"],
        "disk_gb": round(size / 2**30, 2),
    }


def summary(runs: list[dict]) -> dict:
    """Best and median of repeated runs at one scale."""
    rates = [r["records_per_s"] for r in runs]
    return {
        "scale": runs[0]["scale"],
        "runs": len(runs),
        "best_records_per_s": max(rates),
        "median_records_per_s": round(statistics.median(rates)),
        "median_records_per_cpu_s": round(statistics.median(r["records_per_cpu_s"] for r in runs)),
        "max_peak_rss_gb": max(r["peak_rss_gb"] for r in runs),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, action="append", required=True)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="runs per scale")
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    parser.add_argument("--out", type=Path, default=None, help="keep output here")
    args = parser.parse_args(argv)
    for scale in args.scale:
        runs = []
        for _ in range(args.repeat):
            out = args.out or Path(tempfile.mkdtemp(prefix="bench_synth_"))
            try:
                runs.append(bench_scale(scale, args.workers, out, args.format))
                print(runs[-1], flush=True)
            finally:
                if args.out is None:
                    shutil.rmtree(out, ignore_errors=True)
        if args.repeat > 1:
            print({"summary": summary(runs)}, flush=True)


if __name__ == "__main__":
    main()
