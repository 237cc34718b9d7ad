"""Benchmark ``lds-dask synth``: records/s and peak memory of all processes per scale.

    python -m bench.bench_synth --scale 0.01 [--scale 0.1 ...] [--workers 2] [--out DIR]

Peak memory is the maximum, over 0.2 s samples, of the summed RSS of this process and all
its children (the Dask scheduler and workers). Results are printed, not committed.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil

from lds_dask.cluster import get_client
from synthetic_gen import generate


class PeakRss:
    """Samples the summed RSS of this process tree in a background thread."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def bench_scale(scale: float, workers: int | None, out: Path, fmt: str) -> dict:
    """Generate at ``scale`` (cluster start-up excluded from the timing)."""
    with get_client(n_workers=workers, quiet=True) as client, PeakRss() as mem:
        began = time.perf_counter()
        manifest = generate(out, scale=scale, fmt=fmt, client=client, progress=False)
        seconds = time.perf_counter() - began
    c = manifest["counts"]
    records = c["test_records"]["rows"] + c["survey_responses"]["rows"]
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {
        "scale": scale,
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds),
        "peak_rss_gb": round(mem.peak / 2**30, 2),
        "files": c["test_records"]["files"] + c["survey_responses"]["files"],
        "disk_gb": round(size / 2**30, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, action="append", required=True)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    parser.add_argument("--out", type=Path, default=None, help="keep output here")
    args = parser.parse_args(argv)
    for scale in args.scale:
        out = args.out or Path(tempfile.mkdtemp(prefix="bench_synth_"))
        try:
            print(bench_scale(scale, args.workers, out, args.format), flush=True)
        finally:
            if args.out is None:
                shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
