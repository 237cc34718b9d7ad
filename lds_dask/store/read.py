"""Reading the ingest store for the cube: LA partitions, bundles, survey, denominators.

The store layout is the contract in docs/architecture.md. Every reader here works on a
handful of LAs at a time (one Dask task's bundle), so no reader ever loads the store.
Derived columns the cube needs (ISO week, age bands, quintiles) are recomputed when a
store lacks them, so the cube also works on a minimal hand-written store.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from lds_dask.contract import bands, refdata
from lds_dask.runtime.errors import BadInputError
from lds_dask.runtime.hashing import file_sha256

RECORD_COLUMNS = (
    "test_id",
    "person_id",
    "specimen_date",
    "result",
    "test_type",
    "lsoa11_code",
    "age",
    "sex",
    "ethnicity",
)
DERIVED_COLUMNS = (
    "iso_week",
    "age_band",
    "age_band_esp",
    "imd_decile",
    "imd_quintile",
    "ahah_decile",
    "ahah_quintile",
)
SURVEY_COLUMNS = ("visit_date", "swab_result", "survey_weight")


class StoreError(BadInputError, ValueError):
    """The store directory is missing or does not have the documented layout."""


def check_store(store: Path) -> None:
    """Raise :class:`StoreError` (one line, no values) unless ``store`` looks like a store."""
    if not store.is_dir():
        raise StoreError(f"{store}: no such store directory")
    if not (store / "records").is_dir():
        raise StoreError(f"{store}: not a store (no records/ folder; run `lds-dask ingest`)")
    if not store_la_codes(store):
        raise StoreError(f"{store}: the store holds no LA partitions under records/")


def store_la_codes(store: Path) -> list[str]:
    """The LA codes with a record partition, sorted; unknown codes are ignored."""
    codes = [p.name.split("=", 1)[1] for p in (store / "records").glob("la_code=*") if p.is_dir()]
    return sorted(c for c in codes if c in refdata.la_codes())


def partition_bytes(store: Path, la_code: str, table: str = "records") -> int:
    """On-disk size of one LA partition (sizes bundles; not read)."""
    return sum(f.stat().st_size for f in (store / table / f"la_code={la_code}").glob("*.parquet"))


def bundle_las(
    store: Path, la_codes: list[str], target_bytes: int, min_bundles: int = 1
) -> list[tuple[str, ...]]:
    """Group LAs, in code order, into bundles of at most ~``target_bytes`` of parquet.

    One Dask task per bundle: big LAs travel alone, small ones together, so task count
    and overhead stay bounded while memory per task stays near the target. At least
    ``min_bundles`` bundles (when there are that many LAs) of roughly equal size, so
    every worker gets work on a small store too.
    """
    sizes = [max(partition_bytes(store, code), 1) for code in la_codes]
    total = sum(sizes)
    n = max(-(-total // max(target_bytes, 1)), min(min_bundles, len(la_codes)), 1)
    out: list[tuple[str, ...]] = []
    current: list[str] = []
    done = 0
    for code, size in zip(la_codes, sizes, strict=True):
        current.append(code)
        done += size
        if done * n >= total * (len(out) + 1):  # crossed the next equal-share boundary
            out.append(tuple(current))
            current = []
    if current:
        out.append(tuple(current))
    return out


def read_records(
    store: Path, la_codes: tuple[str, ...], columns: tuple[str, ...], derived: bool = True
) -> pl.DataFrame:
    """The records of some LAs with ``la_code``, ``iso_week`` and (when ``derived``) every
    derived column the cube uses; only the named columns are read from disk."""
    frames = []
    for code in la_codes:
        path = store / "records" / f"la_code={code}"
        scan = pl.scan_parquet(sorted(path.glob("*.parquet")), hive_partitioning=False)
        present = scan.collect_schema().names()
        extra = DERIVED_COLUMNS if derived else ("iso_week",)
        wanted = [c for c in dict.fromkeys((*columns, *extra)) if c in present]
        frames.append(scan.select(wanted).with_columns(la_code=pl.lit(code)).collect())
    df = pl.concat(frames, how="diagonal_relaxed")
    if not derived:
        return df if "iso_week" in df.columns else df.with_columns(iso_week=bands.iso_week())
    return add_derived_columns(df)


def add_derived_columns(df: pl.DataFrame) -> pl.DataFrame:
    """Add any missing derived column (ingest normally writes them all)."""
    exprs = {
        "iso_week": bands.iso_week("specimen_date"),
        "age_band": bands.lds_band("age"),
        "age_band_esp": bands.esp_band("age"),
        "ahah_decile": pl.lit(None, pl.Int8),
    }
    needs = {k: v for k, v in exprs.items() if k not in df.columns and _has_inputs(df, k)}
    df = df.with_columns(**needs)
    if "imd_decile" not in df.columns:
        imd = refdata.lsoas().select("lsoa11_code", pl.col("imd_decile").cast(pl.Int8))
        df = df.join(imd, on="lsoa11_code", how="left", maintain_order="left")
    quint = {
        f"{k}_quintile": bands.quintile_from_decile(f"{k}_decile")
        for k in ("imd", "ahah")
        if f"{k}_quintile" not in df.columns
    }
    return df.with_columns(**quint)


def _has_inputs(df: pl.DataFrame, name: str) -> bool:
    needs = {"iso_week": "specimen_date", "age_band": "age", "age_band_esp": "age"}
    return needs.get(name) is None or needs[name] in df.columns


def read_survey(store: Path, la_codes: tuple[str, ...]) -> pl.DataFrame | None:
    """Survey responses of some LAs (``la_code`` added), or None if they have none."""
    frames = []
    for code in la_codes:
        files = sorted((store / "survey" / f"la_code={code}").glob("*.parquet"))
        if files:
            frame = pl.scan_parquet(files, hive_partitioning=False).select(SURVEY_COLUMNS)
            frames.append(frame.with_columns(la_code=pl.lit(code)).collect())
    return pl.concat(frames) if frames else None


def read_population(store: Path) -> pl.DataFrame:
    """LA x sex (F/M) x ESP band x LDS band population, from the store or refdata.

    Only LA rows are kept: every aggregate area's denominator is the sum of its LAs,
    the same additivity rule as the counts.
    """
    path = store / "population.parquet"
    if path.is_file():
        pop = pl.read_parquet(path)
        if {"area_code", "sex", "age_band_esp", "age_band", "population"} <= set(pop.columns):
            return _la_rows(pop.rename({"area_code": "la_code"}))
    ref = refdata.population().rename({"area_code": "la_code"})
    ref = ref.with_columns(age_band_esp=bands.esp_band("age"), age_band=bands.lds_band("age"))
    return _la_rows(
        ref.group_by("la_code", "sex", "age_band_esp", "age_band").agg(pl.col("population").sum())
    )


def _la_rows(pop: pl.DataFrame) -> pl.DataFrame:
    return pop.filter(pl.col("la_code").is_in(sorted(refdata.la_codes()))).select(
        "la_code", "sex", "age_band_esp", "age_band", pl.col("population").cast(pl.Float64)
    )


def read_lsoa_ahah(store: Path) -> pl.DataFrame | None:
    """lsoa11_code -> ahah_decile from the store's linkage file, if it carries AHAH."""
    path = store / "lsoa_covariates.parquet"
    if not path.is_file():
        return None
    cov = pl.read_parquet(path)
    if "ahah_decile" not in cov.columns:
        return None
    return cov.select("lsoa11_code", pl.col("ahah_decile").cast(pl.Int8))


def manifest_sha256(store: Path) -> str:
    """SHA-256 of the store's ``_manifest.json`` (empty string when the store has none)."""
    path = store / "_manifest.json"
    return file_sha256(path) if path.is_file() else ""


def store_format(store: Path) -> dict:
    """The store's ``_store.json`` (empty when absent)."""
    path = store / "_store.json"
    return json.loads(path.read_text()) if path.is_file() else {}
