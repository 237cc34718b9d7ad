"""Cube build vs DuckDB SQL vs a plain polars script, same store, same run.

    python -m bench.bench_cube --store STORE [--workers 2] [--out DIR]

Baselines compute the same counts (LA x week x each breakdown: tests, positive tests,
distinct people tested and positive, PCR scope) with GROUPING SETS in DuckDB and with
group_by in one polars process. The cube build is timed on an already-started Dask
client (LocalCluster start-up is reported on its own line: it is a fixed cost, not the
build's). Peak memory is the summed RSS of this process and all its children (Dask
workers included), sampled every 50 ms, per engine. Engines run in turn, `--repeat`
times, and each engine's fastest run is reported (the machine may be shared). Also times
open_cube + one LA's full profile (every area node) selected and loaded: first call and
best of five.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import psutil

from bench.harness import PeakRss

DUCKDB_MEMORY = "16GB"
BREAKDOWNS = ("age_band", "sex", "ethnicity", "imd_decile", "imd_quintile", "ahah_quintile")


def run_cube(store: Path, out: Path, client) -> None:
    from lds_dask.cube.build import build_cube

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
    # DuckDB's default limit is 80% of RAM; this query took 12 GB at 11M records, so larger
    # stores spill to disk (or fail, recorded as such) instead of swapping the machine.
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.execute(f"SET temp_directory = '{store.parent / 'duckdb_spill'}'")
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
    """Seconds to open the cube and load one LA's full profile from every area node."""
    from lds_dask.cube.build import open_cube

    start = time.perf_counter()
    cube = open_cube(cube_path)
    for name in cube.children:
        if name != "lsoa":
            cube[name].ds.sel(area=la_code).load()
    return time.perf_counter() - start


def measure(label: str, fn, *args) -> dict:
    with PeakRss(psutil.Process().pid) as rss:
        start = time.perf_counter()
        fn(*args)
        wall = time.perf_counter() - start
    return {"engine": label, "wall_s": wall, "peak_rss_gb": rss.peak / 2**30}


def run_all(store: Path, cube_path: Path, workers: int, repeat: int) -> list[dict]:
    """Every engine ``repeat`` times, interleaved; the fastest run of each."""
    from lds_dask.runtime.cluster import get_client

    start = time.perf_counter()
    with get_client(None, workers, quiet=True) as client:
        client.wait_for_workers(workers)
        print(f"Dask LocalCluster start ({workers} workers): {time.perf_counter() - start:.2f} s")
        runs = []
        for _ in range(repeat):
            runs.append(measure("lds_dask cube", run_cube, store, cube_path, client))
            runs.append(measure("duckdb", run_duckdb, store, workers))
            runs.append(measure("polars", run_polars, store))
    best = {}
    for r in runs:
        if r["engine"] not in best or r["wall_s"] < best[r["engine"]]["wall_s"]:
            best[r["engine"]] = r
    return list(best.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="runs per engine (best kept)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the cube")
    args = parser.parse_args()
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="bench_cube_"))
    cube_path = out_dir / "cube.zarr"
    rows = run_all(args.store, cube_path, args.workers, args.repeat)
    fastest = min(r["wall_s"] for r in rows[1:])
    for r in rows:
        print(
            f"{r['engine']:>14}: {r['wall_s']:7.2f} s  peak RSS {r['peak_rss_gb']:5.2f} GB  "
            f"ratio to faster baseline {r['wall_s'] / fastest:5.2f}"
        )
    profile = [time_profile(cube_path) for _ in range(6)]
    print(
        f"open_cube + one LA full profile: first {profile[0] * 1000:.0f} ms, "
        f"best of next five {min(profile[1:]) * 1000:.0f} ms"
    )
    if args.out is None:
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
