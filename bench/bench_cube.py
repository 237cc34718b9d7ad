"""Cube build vs DuckDB SQL vs a plain polars script, same store, same run.

    python -m bench.bench_cube --store STORE [--workers 2] [--out DIR]

Baselines compute the same counts (LA x week x each breakdown: tests, positive tests,
distinct people tested and positive, PCR scope) with GROUPING SETS in DuckDB and with
group_by in one polars process. Peak memory is the summed RSS of this process and all its
children (Dask workers included), sampled every 50 ms, per engine. Also times
open_cube + one LA's full profile (every node) selected and computed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import psutil

from bench.harness import PeakRss

BREAKDOWNS = ("age_band", "sex", "ethnicity", "imd_decile", "imd_quintile", "ahah_quintile")


def run_cube(store: Path, out: Path, workers: int) -> None:
    from lds_dask.cluster import get_client
    from lds_dask.cube import build_cube

    with get_client(None, workers, quiet=True) as client:
        build_cube(store, out, client=client, progress=False)


def run_duckdb(store: Path, workers: int) -> None:
    import duckdb

    sets = ", ".join(f"(la_code, iso_week, {b})" for b in BREAKDOWNS)
    sql = f"""
    SELECT la_code, iso_week, {", ".join(BREAKDOWNS)},
           count(*) AS tests, count(*) FILTER (result = 'POSITIVE') AS positive_tests,
           count(DISTINCT person_id) FILTER (test_type = 'PCR' AND result <> 'VOID') AS people_tested,
           count(DISTINCT person_id) FILTER (test_type = 'PCR' AND result = 'POSITIVE') AS people_positive
    FROM read_parquet('{store}/records/*/*.parquet', hive_partitioning = true)
    GROUP BY GROUPING SETS ((la_code, iso_week), {sets})"""
    con = duckdb.connect()
    con.execute(f"SET threads = {workers}")
    con.execute(sql).fetchall()


def run_polars(store: Path) -> None:
    import polars as pl

    lf = pl.scan_parquet(store / "records", hive_partitioning=True)
    people = pl.col("person_id").filter(
        (pl.col("test_type") == "PCR") & (pl.col("result") != "VOID")
    )
    pos = pl.col("person_id").filter(
        (pl.col("test_type") == "PCR") & (pl.col("result") == "POSITIVE")
    )
    aggs = [
        pl.len().alias("tests"),
        (pl.col("result") == "POSITIVE").sum().alias("positive_tests"),
        people.n_unique().alias("people_tested"),
        pos.n_unique().alias("people_positive"),
    ]
    jobs = [lf.group_by("la_code", "iso_week").agg(aggs)]
    jobs += [lf.group_by("la_code", "iso_week", b).agg(aggs) for b in BREAKDOWNS]
    pl.collect_all(jobs)


def time_profile(cube_path: Path, la_code: str = "E08000035") -> float:
    from lds_dask.cube import open_cube

    start = time.perf_counter()
    cube = open_cube(cube_path)
    for name in cube.children:
        if name != "lsoa":
            cube[name].ds.sel(area=la_code).compute()
    return time.perf_counter() - start


def measure(label: str, fn, *args) -> dict:
    with PeakRss(psutil.Process().pid) as rss:
        start = time.perf_counter()
        fn(*args)
        wall = time.perf_counter() - start
    return {"engine": label, "wall_s": wall, "peak_rss_gb": rss.peak / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="where to write the cube")
    args = parser.parse_args()
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="bench_cube_"))
    cube_path = out_dir / "cube.zarr"
    rows = [
        measure("lds_dask cube", run_cube, args.store, cube_path, args.workers),
        measure("duckdb", run_duckdb, args.store, args.workers),
        measure("polars", run_polars, args.store),
    ]
    fastest = min(r["wall_s"] for r in rows[1:])
    for r in rows:
        print(
            f"{r['engine']:>14}: {r['wall_s']:7.2f} s  peak RSS {r['peak_rss_gb']:5.2f} GB  "
            f"ratio to faster baseline {r['wall_s'] / fastest:5.2f}"
        )
    print(f"open_cube + one LA full profile: {time_profile(cube_path) * 1000:.0f} ms")
    if args.out is None:
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
