"""The benchmark's outputs besides the CSV: a plot, the machine, and bench/README.md's table."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import psutil

from bench.stages import ENGINES, STAGES

TABLE_START, TABLE_END = "<!-- bench:latest:start -->", "<!-- bench:latest:end -->"
COLORS = {"lds_dask": "tab:blue", "duckdb": "tab:orange", "polars": "tab:green"}


def machine() -> dict[str, str]:
    """nproc, RAM, CPU model and the versions that matter, for the README."""
    import dask
    import polars

    try:
        import duckdb

        duck = duckdb.__version__
    except ImportError:
        duck = "not installed"
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = found.group(1).strip() if found else cpu
    return {
        "nproc": str(os.cpu_count()),
        "ram_gb": f"{psutil.virtual_memory().total / 2**30:.1f}",
        "cpu": cpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "polars": polars.__version__,
        "duckdb": duck,
        "dask": dask.__version__,
        "load_avg_1m_at_end": f"{os.getloadavg()[0]:.1f}",
    }


def plot(rows: list[dict], path: Path, say=print) -> Path | None:
    """Wall time and peak memory per stage vs scale, one line per engine x workers."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("no plot: matplotlib is not installed (pip install 'lds-dask[viz]')")
        return None
    ok = [r for r in rows if r["status"] == "ok"]
    stages = [s for s in STAGES if any(r["stage"] == s for r in ok)]
    if not stages:
        return None
    fig, axes = plt.subplots(2, len(stages), figsize=(4 * len(stages), 7), squeeze=False)
    for col, stage in enumerate(stages):
        for engine in ENGINES:
            for workers, style in ((1, "--"), (2, "-")):
                pts = sorted(
                    (r["scale"], r["wall_s"], r["peak_rss_gb"])
                    for r in ok
                    if r["stage"] == stage and r["engine"] == engine and r["workers"] == workers
                )
                if not pts:
                    continue
                xs = [p[0] for p in pts]
                kw = dict(
                    color=COLORS[engine], linestyle=style, marker="o", label=f"{engine} x{workers}"
                )
                axes[0][col].plot(xs, [p[1] for p in pts], **kw)
                axes[1][col].plot(xs, [p[2] for p in pts], **kw)
        axes[0][col].set_title(stage)
        for row, label in ((0, "wall time (s)"), (1, "peak RSS, all processes (GB)")):
            ax = axes[row][col]
            ax.set_xscale("log")
            ax.set_yscale("log" if row == 0 else "linear")
            ax.set_xlabel("scale (1.0 ~ 100M records)")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("lds-dask benchmark vs DuckDB and polars (same files, same run)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown_table(rows: list[dict]) -> str:
    head = (
        "| scale | weeks | stage | engine | workers | records | wall s | records/s | "
        "peak GB | x faster baseline | speed-up 1→2 | status |"
    )
    lines = [head, _rule(head)]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                [
                    _fmt(r["scale"]),
                    _fmt(r["weeks"]),
                    r["stage"],
                    r["engine"],
                    _fmt(r["workers"]),
                    _num(r["records"]),
                    _fmt(r["wall_s"], 2),
                    _num(r["records_per_s"]),
                    _fmt(r["peak_rss_gb"], 2),
                    _ratio(r),
                    _fmt(r["speedup_1_to_2"], 2),
                    r["status"] if r["status"] == "ok" else f"{r['status']}: {r['note'] or ''}",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def _rule(head: str) -> str:
    return "|" + "---|" * (head.count("|") - 1)


def _ratio(r: dict) -> str:
    if r.get("ratio_to_faster_baseline") is None:
        return ""
    return f"{r['ratio_to_faster_baseline']:.2f} ({r['faster_baseline']})"


def _fmt(value, digits: int | None = None) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if digits is not None else str(value)


def _num(value) -> str:
    return "" if value is None else f"{int(value):,}"


def readme_block(rows: list[dict], csv_path: Path, command: str) -> str:
    m = machine()
    png = csv_path.with_suffix(".png")
    parts = [
        TABLE_START,
        f"Latest results: `{_rel(csv_path)}`" + (f", plot `{_rel(png)}`" if png.exists() else ""),
        "",
        f"Command: `{command}`" if command else "",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gb']} GB RAM, {m['os']}; "
        f"Python {m['python']}, polars {m['polars']}, DuckDB {m['duckdb']}, "
        f"dask {m['dask']}; 1-min load average at the end: {m['load_avg_1m_at_end']}.",
        "",
        markdown_table(rows),
        "",
        f"![benchmark]({_rel(png, Path('bench'))})" if png.exists() else "",
        TABLE_END,
    ]
    return "\n".join(parts)


def _rel(path: Path, base: Path | None = None) -> str:
    root = Path(__file__).resolve().parent
    try:
        rel = path.resolve().relative_to(root.parent)
    except ValueError:
        return str(path)
    if base is not None:
        return str(rel.relative_to(base)) if rel.is_relative_to(base) else str(rel)
    return str(rel)


def update_readme(readme: Path, rows: list[dict], csv_path: Path, command: str) -> None:
    """Replace the table between the markers in bench/README.md (or append it)."""
    block = readme_block(rows, csv_path, command)
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    if TABLE_START in text and TABLE_END in text:
        before, rest = text.split(TABLE_START, 1)
        after = rest.split(TABLE_END, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n## Latest results\n\n" + block + "\n"
    readme.write_text(text)
