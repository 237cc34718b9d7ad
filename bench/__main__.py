"""``python -m bench``: the benchmark suite (same options as ``lds-dask bench``)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from bench.harness import BENCH_DIR, BenchOptions, run
from bench.stages import ENGINES, STAGES


def parse_options(argv: list[str] | None = None, prog: str = "python -m bench") -> BenchOptions:
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Benchmark synth -> ingest -> cube -> export against DuckDB and polars.",
    )
    ap.add_argument("--scale", type=float, action="append", help="repeatable (default 0.01)")
    ap.add_argument("--workers", type=int, action="append", help="repeatable (default 1 and 2)")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset")
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", type=Path, default=BENCH_DIR / "work")
    ap.add_argument("--results", type=Path, default=BENCH_DIR / "results")
    ap.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work files")
    args = ap.parse_args(argv)
    return BenchOptions(
        scales=tuple(args.scale or [0.01]),
        workers=tuple(args.workers or [1, 2]),
        stages=split(args.stages),
        engines=split(args.engines),
        weeks=args.weeks,
        seed=args.seed,
        work=args.work,
        results=args.results,
        readme=None if args.no_readme else BENCH_DIR / "README.md",
        keep=args.keep,
        plot=not args.no_plot,
        command=shlex.join([*prog.split(), *(sys.argv[1:] if argv is None else argv)]),
    )


def split(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def main(argv: list[str] | None = None, prog: str = "python -m bench") -> None:
    try:
        opts = parse_options(argv, prog)
    except ValueError as exc:
        sys.exit(f"error: bench: {exc}")
    run(opts)


if __name__ == "__main__":
    main()
