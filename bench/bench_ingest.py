"""Benchmark ``lds-dask ingest`` against DuckDB and plain polars on the same files, same run.

    python -m bench.bench_ingest --raw DIR [--workers 2] [--scratch DIR] [--json OUT]

Each engine runs in a fresh subprocess; the parent samples the resident memory of the whole
process tree (the engine plus any Dask workers) every 50 ms with psutil and reports the peak.
The baselines do the validation-free partition write the issue names:
DuckDB ``COPY (SELECT ...) TO ... (FORMAT parquet, PARTITION_BY (la_code))`` and polars
``write_parquet(partition_by="la_code")``. Results are printed, never committed here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import PeakRss

ENGINES = ("lds_dask", "duckdb", "polars")


def run_engine(engine: str, raw: Path, out: Path, workers: int) -> None:
    """Do one engine's partition write (called inside the child process)."""
    files = sorted(p for p in raw.rglob("*") if p.suffix in (".parquet", ".csv"))
    if engine == "lds_dask":
        from lds_dask.ingest.run import ingest
        from lds_dask.runtime.cluster import get_client

        with get_client(n_workers=workers, quiet=True) as client:
            ingest(files, out, client=client, progress=False, max_reject_rate=1.0)
    elif engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads={workers}")
        reader = "read_parquet" if files[0].suffix == ".parquet" else "read_csv_auto"
        listed = ", ".join(f"'{p}'" for p in files)
        con.execute(
            f"COPY (SELECT * FROM {reader}([{listed}])) TO '{out}' "
            "(FORMAT parquet, PARTITION_BY (la_code))"
        )
    else:
        import polars as pl

        scan = pl.scan_parquet(files) if files[0].suffix == ".parquet" else pl.scan_csv(files)
        scan.collect().write_parquet(out, partition_by="la_code", mkdir=True)


def measure(engine: str, raw: Path, out: Path, workers: int) -> dict:
    """Wall time and peak RSS of the child's process tree."""
    cmd = [
        sys.executable,
        "-m",
        "bench.bench_ingest",
        "--child",
        engine,
        "--raw",
        str(raw),
        "--scratch",
        str(out),
        "--workers",
        str(workers),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    with PeakRss(proc.pid) as rss:
        code = proc.wait()
        wall = time.perf_counter() - start
    if code:
        raise SystemExit(f"{engine} failed with exit code {code}")
    return {"engine": engine, "wall_s": round(wall, 2), "peak_rss_gb": round(rss.peak / 2**30, 2)}


def count_rows(raw: Path) -> int:
    import polars as pl

    files = sorted(p for p in raw.rglob("*") if p.suffix in (".parquet", ".csv"))
    scan = pl.scan_parquet(files) if files[0].suffix == ".parquet" else pl.scan_csv(files)
    return scan.select(pl.len()).collect().item()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", type=Path, required=True, help="directory of test_records files")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scratch", type=Path, help="where outputs go (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    ap.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return run_engine(args.child, args.raw, args.scratch, args.workers)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    rows = count_rows(args.raw)
    results = []
    for engine in ENGINES:
        out = scratch / engine
        shutil.rmtree(out, ignore_errors=True)
        results.append(measure(engine, args.raw, out, args.workers))
    base = next(r["wall_s"] for r in results if r["engine"] == "duckdb")
    for r in results:
        r.update(
            rows=rows,
            rows_per_s=round(rows / r["wall_s"]),
            ratio_to_duckdb=round(r["wall_s"] / base, 2),
        )
    print_results(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")
    shutil.rmtree(scratch, ignore_errors=True) if not args.scratch else None


def print_results(results: list[dict], args) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"ingest benchmark: {results[0]['rows']:,} rows from {args.raw}, "
        f"{args.workers} worker(s)"
    )
    for col in ("engine", "wall_s", "rows_per_s", "ratio_to_duckdb", "peak_rss_gb"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for r in results:
        table.add_row(
            r["engine"],
            f"{r['wall_s']:.2f}",
            f"{r['rows_per_s']:,}",
            f"{r['ratio_to_duckdb']:.2f}",
            f"{r['peak_rss_gb']:.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
