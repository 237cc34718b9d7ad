"""What each engine does in each benchmark stage; run inside a fresh child process.

    python -m bench.stages STAGE ENGINE --workers N --work DIR [--scale S --weeks W --seed 42]

The parent (:mod:`bench.harness`) starts one child per (stage, engine, workers), pins its
threads (``POLARS_MAX_THREADS=N``, ``OMP_NUM_THREADS=N``; DuckDB ``SET threads=N``; lds_dask
``N`` single-threaded Dask workers) and samples the RSS of the child's whole process tree.
The child times only the work itself (imports, DuckDB connect and the LocalCluster start-up
are outside the timed section) and prints one ``BENCH_RESULT {json}`` line.

Per-stage work (inputs and outputs live under the scale's work directory ``DIR``; see
bench/README.md "What the baselines compute"):

- synth: lds_dask runs ``synthetic_gen.generate``. Baselines rewrite the generated
  ``test_records/`` and ``survey_responses/`` as zstd-1 parquet partitioned by week: an I/O
  floor (same rows, same layout), *not* the same work as drawing them from the model.
- ingest: lds_dask ``ingest`` (validation, quarantine, dedup, LSOA linkage, sort, compaction,
  manifest) of records + survey + AHAH. Baselines: a validation-free partition write of the
  same raw records and survey files by ``la_code`` (DuckDB ``COPY ... PARTITION_BY``; polars
  streaming ``sink_parquet(PartitionBy(key="la_code"))``).
- cube: lds_dask ``build_cube`` from the lds store. Baselines are ``bench.bench_cube``'s
  ``run_duckdb`` (GROUPING SETS) and ``run_polars`` (one ``collect_all`` of group_bys):
  LA x week x each breakdown, tests, positive tests and distinct people tested/positive
  (PCR), read from the same store and materialised in memory (nothing written).
- export: lds_dask ``export_cube`` (csv). Baselines read the same cube's numeric cells,
  flattened once to ``export_input.parquet`` before timing, apply primary suppression of
  counts < threshold (zeros too) to every measure of that cell, and write the same tidy long
  CSV, one file per node: a lower bound (no secondary suppression, ACRO json or checksums).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from contextlib import nullcontext
from pathlib import Path

STAGES = ("synth", "ingest", "cube", "export")
ENGINES = ("lds_dask", "duckdb", "polars")
RESULT_PREFIX = "BENCH_RESULT "
EXPORT_INPUT = "export_input.parquet"
COUNTS = (
    "tests",
    "positive_tests",
    "people_tested",
    "people_positive",
    "survey_positive",
    "survey_responses",
)
THRESHOLD = 10  # lds_dask.sdc.rules.DEFAULT_THRESHOLD, the ONS SRS / ACRO minimum


def paths(work: Path) -> dict[str, Path]:
    """Where each stage reads and writes inside one scale's work directory."""
    return {
        "raw": work / "raw",
        "store": work / "store",
        "cube": work / "cube.zarr",
        "export": work / "export",
        "export_input": work / EXPORT_INPUT,
        "scratch": work / "scratch",
    }


def run_synth(engine: str, work: Path, workers: int, scale: float, weeks: int, seed: int):
    p = paths(work)
    if engine == "lds_dask":
        from synthetic_gen import generate

        with lds_client(workers) as client:
            began = time.perf_counter()
            generate(p["raw"], scale=scale, seed=seed, weeks=weeks, client=client, progress=False)
            return time.perf_counter() - began
    out = fresh(p["scratch"])
    began = time.perf_counter()
    for table in ("test_records", "survey_responses"):
        partition_write(engine, p["raw"] / table, out / table, "week", workers)
    return time.perf_counter() - began


def run_ingest(engine: str, work: Path, workers: int, **_):
    p = paths(work)
    if engine == "lds_dask":
        from lds_dask.ingest.run import ingest

        shutil.rmtree(p["store"], ignore_errors=True)
        with lds_client(workers) as client:
            began = time.perf_counter()
            report = ingest(
                [p["raw"] / "test_records"],
                p["store"],
                survey=p["raw"] / "survey_responses",
                ahah=p["raw"] / "ahah.parquet",
                client=client,
                progress=False,
                max_reject_rate=1.0,
            )
            seconds = time.perf_counter() - began
        if report.status != "committed":
            raise RuntimeError(f"ingest ended {report.status}")
        return seconds
    out = fresh(p["scratch"])
    began = time.perf_counter()
    partition_write(engine, p["raw"] / "test_records", out / "records", "la_code", workers)
    partition_write(engine, p["raw"] / "survey_responses", out / "survey", "la_code", workers)
    return time.perf_counter() - began


def run_cube(engine: str, work: Path, workers: int, **_):
    p = paths(work)
    if engine == "lds_dask":
        from lds_dask.cube.build import build_cube

        shutil.rmtree(p["cube"], ignore_errors=True)
        with lds_client(workers) as client:
            began = time.perf_counter()
            build_cube(p["store"], p["cube"], client=client, progress=False)
            return time.perf_counter() - began
    from bench import bench_cube

    began = time.perf_counter()
    if engine == "duckdb":
        bench_cube.run_duckdb(p["store"], workers)
    else:
        bench_cube.run_polars(p["store"])  # threads pinned by POLARS_MAX_THREADS
    return time.perf_counter() - began


def run_export(engine: str, work: Path, workers: int, **_):
    p = paths(work)
    if engine == "lds_dask":
        from lds_dask.outputs.export import export_cube
        from lds_dask.sdc.rules import DisclosureRules

        shutil.rmtree(p["export"], ignore_errors=True)
        began = time.perf_counter()
        export_cube(p["cube"], p["export"], DisclosureRules(threshold=THRESHOLD), ["csv"])
        return time.perf_counter() - began
    out = fresh(p["scratch"])
    began = time.perf_counter()
    (export_duckdb if engine == "duckdb" else export_polars)(p["export_input"], out, workers)
    return time.perf_counter() - began


RUNNERS = {"synth": run_synth, "ingest": run_ingest, "cube": run_cube, "export": run_export}


def lds_client(workers: int):
    from lds_dask.runtime.cluster import get_client

    return get_client(n_workers=workers, quiet=True) if workers else nullcontext(None)


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def partition_write(engine: str, src: Path, out: Path, key: str, threads: int) -> None:
    """Validation-free rewrite of a hive directory of parquet, partitioned by ``key``."""
    if engine == "duckdb":
        con = duckdb_connect(threads)
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{src}/**/*.parquet', hive_partitioning=true)) "
            f"TO '{out}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, "
            f"PARTITION_BY ({key}))"
        )
        con.close()
    else:
        import polars as pl

        lf = pl.scan_parquet(src, hive_partitioning=True)
        lf.sink_parquet(
            pl.PartitionBy(out, key=key), compression="zstd", compression_level=1, mkdir=True
        )


def duckdb_connect(threads: int):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    con.execute("SET preserve_insertion_order=false")
    return con


def export_duckdb(src: Path, out: Path, threads: int) -> None:
    """Primary suppression over every measure of a cell, then one tidy CSV per node."""
    con = duckdb_connect(threads)
    counts = ", ".join(f"'{c}'" for c in COUNTS)
    con.execute(f"""
        COPY (
          WITH flagged AS (
            SELECT *, measure IN ({counts}) AND value < {THRESHOLD} AS small FROM '{src}'),
          cells AS (
            SELECT *, bool_or(small) OVER (
              PARTITION BY area_code, week, breakdown, category) AS hidden FROM flagged)
          SELECT area_code, area_name, area_type, strftime(week, '%Y-%m-%d') AS week,
                 breakdown, category, measure,
                 CASE WHEN hidden THEN NULL ELSE value END AS value,
                 CASE WHEN small THEN 'suppressed_primary'
                      WHEN hidden THEN 'suppressed_secondary' ELSE 'ok' END AS status
          FROM cells)
        TO '{out}' (FORMAT csv, HEADER, PARTITION_BY (breakdown))""")
    con.close()


def export_polars(src: Path, out: Path, threads: int) -> None:
    """The same suppression and CSV layout as :func:`export_duckdb`, in polars."""
    import polars as pl

    cell = ["area_code", "week", "breakdown", "category"]
    small = pl.col("measure").is_in(COUNTS) & (pl.col("value") < THRESHOLD)
    frame = (
        pl.scan_parquet(src)
        .with_columns(small=small)
        .with_columns(hidden=pl.col("small").any().over(cell))
        .with_columns(
            week=pl.col("week").dt.strftime("%Y-%m-%d"),
            value=pl.when(pl.col("hidden")).then(None).otherwise(pl.col("value")),
            status=pl.when("small")
            .then(pl.lit("suppressed_primary"))
            .when("hidden")
            .then(pl.lit("suppressed_secondary"))
            .otherwise(pl.lit("ok")),
        )
        .drop("small", "hidden")
    )
    frame.sink_csv(pl.PartitionBy(out, key="breakdown"), mkdir=True)


def flatten_cube(cube: Path, dest: Path) -> int:
    """Write every numeric cell of the cube as one long parquet (export baselines' input)."""
    import polars as pl

    from lds_dask.cube.build import cube_to_frame, open_cube

    tree = open_cube(cube)
    frames = [cube_to_frame(tree, node) for node in tree.children]
    frame = pl.concat(frames, how="diagonal_relaxed")
    frame.write_parquet(dest)
    return frame.height


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=STAGES)
    ap.add_argument("engine", choices=ENGINES)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--scale", type=float, default=0.01)
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    seconds = RUNNERS[args.stage](
        args.engine, args.work, args.workers, scale=args.scale, weeks=args.weeks, seed=args.seed
    )
    if args.engine != "lds_dask":
        shutil.rmtree(paths(args.work)["scratch"], ignore_errors=True)
    print(RESULT_PREFIX + json.dumps({"seconds": seconds}), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
