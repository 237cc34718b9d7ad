"""Benchmark: explorer LA-switch latency and report-pack build time on a 309-LA cube.

    python -m bench.bench_explore [--cube CUBE.zarr] [--weeks 52] [--browser] [--report]

Without --cube a seeded 309-LA fake cube (tests/cube_fixture.py) is written to a temp dir.
Server side: time of ``Explorer.select_la`` (numpy slices + Bokeh source updates, with the
views attached to a Bokeh Document). --browser: end to end in headless chromium, from a
hex selection in the page to the new trend data arriving and the next frame painted.
--report: wall time of `lds-dask report` for all 309 LAs with --workers N.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_cube(weeks: int) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from cube_fixture import write_fake_cube

    path = Path(tempfile.mkdtemp(prefix="bench-explore-")) / "cube.zarr"
    write_fake_cube(path, weeks=weeks, seed=1)
    return path


def bench_server(cube_path: Path, n: int = 100) -> np.ndarray:
    """Milliseconds per LA switch inside the server process."""
    from bokeh.document import Document

    from lds_dask.outputs.explore import Explorer
    from lds_dask.outputs.views.data import load_cube_arrays, open_view

    t0 = time.perf_counter()
    cube = load_cube_arrays(open_view(cube_path, safe=False))
    print(f"cube read into numpy in {time.perf_counter() - t0:.2f} s")
    app = Explorer(cube)
    app.panel().server_doc(Document())
    rng = np.random.default_rng(0)
    times = []
    for code in rng.choice(cube.ltla_codes, n):
        start = time.perf_counter()
        app.select_la(str(code))
        times.append((time.perf_counter() - start) * 1e3)
    return np.array(times)


SWITCH_JS = """async (k) => {
  const doc = window.Bokeh.documents[0];
  const hex = doc.get_model_by_name('hex-source'), trend = doc.get_model_by_name('trend-source');
  const code = hex.data.code[k], t0 = performance.now();
  hex.selected.indices = [k];
  while (trend.tags[0] !== code) { await new Promise(r => setTimeout(r, 1)); }
  await new Promise(r => requestAnimationFrame(() => r()));
  return performance.now() - t0;
}"""


def bench_browser(cube_path: Path, n: int = 30) -> np.ndarray:
    """Milliseconds from a hex selection in chromium to the redrawn trend, end to end."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_explorer, stop

    proc, url = start_explorer(cube_path)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url)
            page.wait_for_function(
                "() => window.Bokeh && Bokeh.documents.length && "
                "Bokeh.documents[0].get_model_by_name('trend-source')"
            )
            page.wait_for_timeout(1000)
            times = [
                page.evaluate(SWITCH_JS, int(k))
                for k in np.random.default_rng(0).integers(0, 309, n)
            ]
            browser.close()
    finally:
        stop(proc)
    return np.array(times)


def bench_report(cube_path: Path, workers: int) -> float:
    out = Path(tempfile.mkdtemp(prefix="bench-report-"))
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lds_dask",
            "report",
            "--cube",
            str(cube_path),
            "--out",
            str(out),
            "--workers",
            str(workers),
        ],
        check=True,
    )
    return time.perf_counter() - start


def summary(name: str, ms: np.ndarray) -> None:
    print(
        f"{name}: median {np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, "
        f"max {ms.max():.1f} ms over {ms.size} switches"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cube", type=Path)
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--browser", action="store_true")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    cube = args.cube or make_cube(args.weeks)
    summary("server-side LA switch", bench_server(cube))
    if args.browser:
        summary("browser LA switch (hex click -> redrawn)", bench_browser(cube))
    if args.report:
        print(
            f"report pack, 309 LAs, {args.workers} workers: {bench_report(cube, args.workers):.1f} s"
        )


if __name__ == "__main__":
    main()
