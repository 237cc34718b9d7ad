"""``generate``: build the world, run every chunk as a Dask task, write truth and manifest.

Chunks are independent and seeded from (seed, chunk key), so the bytes written do not
depend on the number of workers. Without a client the chunks run in this process.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lds_dask.contract import refdata
from lds_dask.runtime.hashing import file_sha256
from synthetic_gen.ahah import write_ahah
from synthetic_gen.chunk import ChunkTask, run_chunk
from synthetic_gen.dirty import dirty_kinds
from synthetic_gen.params import ChunkingParams, ModelParams
from synthetic_gen.progress import run_tasks
from synthetic_gen.truth import complete_grid
from synthetic_gen.world import World, build_world

FORMATS = ("parquet", "csv")
GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class GenerateOptions:
    """What to generate; validated up front so a bad option fails before any work."""

    scale: float = 0.01
    seed: int = 42
    start: dt.date = dt.date(2020, 5, 25)
    weeks: int = 52
    fmt: str = "parquet"
    dirty_rate: float = 0.0

    def check(self) -> None:
        problems = []
        if not 0 < self.scale <= 10:
            problems.append(f"scale must be in (0, 10], got {self.scale}")
        if self.start.weekday() != 0:
            problems.append(f"start must be a Monday (ISO week start), got {self.start}")
        if not 1 <= self.weeks <= 520:
            problems.append(f"weeks must be 1..520, got {self.weeks}")
        if self.fmt not in FORMATS:
            problems.append(f"format must be one of {', '.join(FORMATS)}, got {self.fmt!r}")
        if not 0 <= self.dirty_rate <= 0.5:
            problems.append(f"dirty_rate must be in [0, 0.5], got {self.dirty_rate}")
        if problems:
            raise ValueError("; ".join(problems))


def generate(
    out: Path,
    scale: float = 0.01,
    seed: int = 42,
    start: dt.date = dt.date(2020, 5, 25),
    weeks: int = 52,
    fmt: str = "parquet",
    dirty_rate: float = 0.0,
    client=None,
    progress: bool = True,
    model: ModelParams | None = None,
    chunking: ChunkingParams | None = None,
) -> dict:
    """Write a synthetic national extract with its planted truth under ``out``.

    Returns the manifest (also written to ``out/manifest.json``). Raises ``ValueError`` for
    bad options. Existing ``test_records/``, ``survey_responses/`` and ``truth/`` under
    ``out`` are replaced, so stale files never mix with new ones.
    """
    opts = GenerateOptions(scale, seed, start, weeks, fmt, dirty_rate)
    opts.check()
    model, chunking = model or ModelParams(), chunking or ChunkingParams()
    out = Path(out)
    _clear(out)
    world = build_world(seed, scale, start, weeks, model, chunking)
    tasks = [
        ChunkTask(i, b, r, str(out), fmt, dirty_rate)
        for i, (b, r) in enumerate((b, r) for b in range(len(world.bundles)) for r in world.ranges)
    ]
    results = run_tasks(run_chunk, world, model, tasks, client, progress)
    truth_files = write_truth(out / "truth", world, model, results, opts)
    ahah = write_ahah(out / "ahah.parquet", seed)
    manifest = build_manifest(out, opts, world, results, truth_files + [ahah])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _clear(out: Path) -> None:
    for name in ("test_records", "survey_responses", "truth"):
        if (out / name).exists():
            shutil.rmtree(out / name)
    out.mkdir(parents=True, exist_ok=True)


def write_truth(
    directory: Path, world: World, model: ModelParams, results: list[dict], opts: GenerateOptions
) -> list[Path]:
    """truth/: la_week_counts, prevalence, survey_prevalence, params, dirty_counts."""
    directory.mkdir(parents=True, exist_ok=True)
    counts = complete_grid([r["truth"] for r in results], list(world.la_codes), world.mondays)
    prev = pl.concat([r["prevalence"] for r in results])
    paths = {
        name: directory / name
        for name in (
            "la_week_counts.parquet",
            "prevalence.parquet",
            "survey_prevalence.parquet",
            "params.json",
            "dirty_counts.json",
        )
    }
    counts.write_parquet(paths["la_week_counts.parquet"])
    prevalence_table(prev.filter(pl.col("scope") == "all_ages")).write_parquet(
        paths["prevalence.parquet"]
    )
    prevalence_table(
        prev.filter(pl.col("scope") == "survey", pl.col("imd_decile").is_null())
    ).write_parquet(paths["survey_prevalence.parquet"])
    _write_json(paths["params.json"], params_record(world, model, opts))
    dirty = dict.fromkeys(dirty_kinds(opts.fmt), 0)
    for r in results:
        for k, v in r["dirty"].items():
            dirty[k] += v
    _write_json(paths["dirty_counts.json"], dirty)
    return list(paths.values())


def prevalence_table(rows: pl.DataFrame) -> pl.DataFrame:
    """LA rows plus region and England, population-weighted; prevalence = cases / pop."""
    region = refdata.las().select("la_code", area_code="region_code")
    la = rows.rename({"la_code": "area_code"}).with_columns(area_type=pl.lit("ltla"))
    regions = _sum_areas(rows.join(region, on="la_code", how="left", maintain_order="left"))
    england = _sum_areas(rows.with_columns(area_code=pl.lit(refdata.ENGLAND_CODE)))
    cols = ["area_code", "area_type", "iso_week", "imd_decile", "population", "prevalence"]
    return (
        pl.concat(
            [
                t.with_columns(prevalence=pl.col("cases") / pl.col("population")).select(cols)
                for t in (
                    la,
                    regions.with_columns(area_type=pl.lit("region")),
                    england.with_columns(area_type=pl.lit("country")),
                )
            ]
        )
        .with_columns(prevalence=pl.col("prevalence").fill_nan(None))
        .sort("area_type", "area_code", "iso_week", "imd_decile", nulls_last=False)
    )


def _sum_areas(rows: pl.DataFrame) -> pl.DataFrame:
    """Population and cases summed per area_code x iso_week x imd_decile, in row order.

    Bit-reproducible on purpose: polars' parallel join and group_by may add floats in a
    thread-dependent order, which once made truth/prevalence.parquet differ between
    identical runs. Here groups are numbered by key rank and summed by ``np.bincount``,
    a sequential loop over rows that arrive in task order.
    """
    keys = ["area_code", "iso_week", "imd_decile"]
    codes = rows.select(pl.struct(keys).rank("dense").cast(pl.Int64) - 1).to_series()
    group = codes.to_numpy()
    first = np.unique(group, return_index=True)[1]
    out = rows.select(keys)[first]
    sums = {
        c: np.bincount(group, weights=rows[c].to_numpy(), minlength=len(first))
        for c in ("population", "cases")
    }
    return out.with_columns(**{c: pl.Series(v) for c, v in sums.items()})


def params_record(world: World, model: ModelParams, opts: GenerateOptions) -> dict:
    """Everything planted, for truth/params.json."""
    return {
        "seed": opts.seed,
        "scale": opts.scale,
        "start": opts.start.isoformat(),
        "weeks": opts.weeks,
        "format": opts.fmt,
        "dirty_rate": opts.dirty_rate,
        "model": model.to_dict(),
        "la_log_multiplier": dict(
            zip(world.la_codes.tolist(), world.log_multiplier.round(6).tolist(), strict=True)
        ),
        "definitions": {
            "imd_log_odds_per_decile": "log-odds of infection per one-decile step from "
            "decile 1 (most deprived) towards decile 10",
            "symptomatic_test_factor": "uptake ratio infected/uninfected, equal in every "
            "cell, so people-based positivity odds ratios equal "
            "prevalence odds ratios",
            "people": "person-weeks (ISO week, Monday) owned by the LA of the first "
            "non-VOID in-scope test (earliest specimen_date, then smallest test_id)",
        },
    }


def build_manifest(
    out: Path, opts: GenerateOptions, world: World, results: list[dict], extra: list[Path]
) -> dict:
    files = sorted((f for r in results for f in r["files"]), key=lambda f: f["path"])
    files += [
        {
            "path": p.relative_to(out).as_posix(),
            "table": None,
            "rows": None,
            "clean_rows": None,
            "sha256": file_sha256(p),
        }
        for p in extra
    ]
    counts = {}
    for table in ("test_records", "survey_responses"):
        rows = [f for f in files if f["table"] == table]
        counts[table] = {
            "files": len(rows),
            "rows": sum(f["rows"] for f in rows),
            "clean_rows": sum(f["clean_rows"] for f in rows),
        }
    return {
        "generator": "synthetic_gen",
        "generator_version": GENERATOR_VERSION,
        "synthetic": True,
        "seed": opts.seed,
        "scale": opts.scale,
        "start": opts.start.isoformat(),
        "weeks": opts.weeks,
        "format": opts.fmt,
        "dirty_rate": opts.dirty_rate,
        "bundles": len(world.bundles),
        "chunks": len(results),
        "counts": counts,
        "files": files,
        "attribution": refdata.ATTRIBUTION,
    }


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
