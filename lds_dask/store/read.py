"""Reading the ingest store through its manifest: LA partitions, bundles, survey, denominators.

``Store(path)`` is the one reader of a store (the layout is the contract in
docs/architecture.md). Opening checks, before anything is read, that the store is one this
version reads, that no ingest commit is pending, and that the partition folders on disk are
exactly those ``_manifest.json`` lists; the manifest is the only list of partitions. Every
partition is then read whole into memory once, its sha256 checked against the manifest and
parsed from that buffer, inside the task that uses it, so a store that was altered or
half-committed is refused with a one-line :class:`StoreError` naming the partition (never a
record value), at the cost of hashing bytes that are read anyway.

Every reader works on a handful of LAs at a time (one Dask task's bundle), so no reader ever
loads the store. Derived columns the cube needs (ISO week, age bands, quintiles) are
recomputed when a store lacks them, so the cube also works on a minimal hand-written store
(:mod:`lds_dask.store.handmade`).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import polars as pl

from lds_dask.contract import bands, refdata
from lds_dask.store.layout import (
    MANIFEST_FILE,
    StoreError,
    check_committed,
    check_partition_set,
    check_partition_sha256,
    open_store,
)

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

__all__ = ["RECORD_COLUMNS", "Store", "StoreError"]


class Store:
    """A committed ingest store, opened through its manifest and checked (module docstring).

    Small enough to send to every Dask task: it holds the path, the store format, the
    manifest's sha256 and its partition entries (``{file, sha256, rows}`` by table and LA),
    not the manifest's list of ingested files.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise StoreError(f"{self.path}: no such store directory")
        self.format = open_store(self.path)
        check_committed(self.path)
        raw = self._manifest_bytes()
        self.manifest_sha256 = hashlib.sha256(raw).hexdigest()
        self._partitions = _partition_entries(self.path, raw)
        check_partition_set(self.path, self._partitions)
        if not self._partitions.get("records"):
            raise StoreError(f"{self.path}: the store holds no LA partitions under records/")

    def __str__(self) -> str:
        return str(self.path)

    def _manifest_bytes(self) -> bytes:
        try:
            return (self.path / MANIFEST_FILE).read_bytes()
        except FileNotFoundError:
            raise StoreError(
                f"{self.path}: no {MANIFEST_FILE} (nothing was committed; run `lds-dask ingest`)"
            ) from None

    def partitions(self, table: str = "records") -> dict[str, dict]:
        """LA code -> manifest entry (``file``, ``sha256``, ``rows``) of one table's partitions."""
        return {code: dict(entry) for code, entry in self._partitions.get(table, {}).items()}

    def la_codes(self, table: str = "records") -> list[str]:
        """The LA codes with a partition of ``table``, sorted; unknown codes are ignored."""
        return sorted(c for c in self._partitions.get(table, {}) if c in refdata.la_codes())

    def partition_bytes(self, la_code: str, table: str = "records") -> int:
        """On-disk size of one LA partition (sizes bundles; not read)."""
        return (self.path / self._partitions[table][la_code]["file"]).stat().st_size

    def read_partition(self, table: str, la_code: str) -> bytes:
        """The bytes of one partition, after checking them against the manifest's sha256."""
        entry = self._partitions[table][la_code]
        data = (self.path / entry["file"]).read_bytes()
        check_partition_sha256(self.path, table, la_code, entry, hashlib.sha256(data).hexdigest())
        return data

    def scan(self, table: str, la_code: str, columns) -> pl.DataFrame:
        """The named columns (those present) of one checked partition; rows as the manifest says."""
        buffer = io.BytesIO(self.read_partition(table, la_code))
        present = pl.read_parquet_schema(buffer).keys()
        frame = pl.read_parquet(buffer, columns=[c for c in dict.fromkeys(columns) if c in present])
        if frame.height != self._partitions[table][la_code].get("rows", frame.height):
            raise StoreError(
                f"{self.path}: partition {table}/la_code={la_code} row count differs "
                "from the manifest"
            )
        return frame

    def bundle_las(
        self, la_codes: list[str], target_bytes: int, min_bundles: int = 1
    ) -> list[tuple[str, ...]]:
        """Group LAs, in code order, into bundles of at most ~``target_bytes`` of parquet.

        One Dask task per bundle: big LAs travel alone, small ones together, so task count
        and overhead stay bounded while memory per task stays near the target. At least
        ``min_bundles`` bundles (when there are that many LAs) of roughly equal size, so
        every worker gets work on a small store too.
        """
        sizes = [max(self.partition_bytes(code), 1) for code in la_codes]
        return _equal_share_bundles(la_codes, sizes, target_bytes, min_bundles)

    def read_records(
        self, la_codes: tuple[str, ...], columns: tuple[str, ...], derived: bool = True
    ) -> pl.DataFrame:
        """The records of some LAs with ``la_code``, ``iso_week`` and (when ``derived``) every
        derived column the cube uses; only the named columns are parsed."""
        extra = DERIVED_COLUMNS if derived else ("iso_week",)
        frames = [
            self.scan("records", code, (*columns, *extra)).with_columns(la_code=pl.lit(code))
            for code in la_codes
        ]
        df = pl.concat(frames, how="diagonal_relaxed")
        if not derived:
            return df if "iso_week" in df.columns else df.with_columns(iso_week=bands.iso_week())
        return add_derived_columns(df)

    def read_survey(self, la_codes: tuple[str, ...]) -> pl.DataFrame | None:
        """Survey responses of some LAs (``la_code`` added), or None if they have none."""
        listed = self._partitions.get("survey", {})
        frames = [
            self.scan("survey", code, SURVEY_COLUMNS)
            .select(SURVEY_COLUMNS)
            .with_columns(la_code=pl.lit(code))
            for code in la_codes
            if code in listed
        ]
        return pl.concat(frames) if frames else None

    def read_population(self) -> pl.DataFrame:
        """LA x sex (F/M) x ESP band x LDS band population, from the store or refdata.

        Only LA rows are kept: every aggregate area's denominator is the sum of its LAs,
        the same additivity rule as the counts.
        """
        path = self.path / "population.parquet"
        if path.is_file():
            pop = pl.read_parquet(path)
            if {"area_code", "sex", "age_band_esp", "age_band", "population"} <= set(pop.columns):
                return _la_rows(pop.rename({"area_code": "la_code"}))
        ref = refdata.population().rename({"area_code": "la_code"})
        ref = ref.with_columns(age_band_esp=bands.esp_band("age"), age_band=bands.lds_band("age"))
        by_band = ref.group_by("la_code", "sex", "age_band_esp", "age_band")
        return _la_rows(by_band.agg(pl.col("population").sum()))

    def read_lsoa_ahah(self) -> pl.DataFrame | None:
        """lsoa11_code -> ahah_decile from the store's linkage file, if it carries AHAH."""
        path = self.path / "lsoa_covariates.parquet"
        if not path.is_file():
            return None
        cov = pl.read_parquet(path)
        if "ahah_decile" not in cov.columns:
            return None
        return cov.select("lsoa11_code", pl.col("ahah_decile").cast(pl.Int8))


def _partition_entries(store: Path, raw: bytes) -> dict[str, dict[str, dict]]:
    """``partitions`` of the manifest, checked to be table -> LA code -> entry mappings."""
    try:
        partitions = json.loads(raw).get("partitions", {})
    except (ValueError, AttributeError):
        raise StoreError(f"{store / MANIFEST_FILE}: manifest is not valid JSON") from None
    if not isinstance(partitions, dict) or not all(
        isinstance(v, dict) for v in partitions.values()
    ):
        raise StoreError(f"{store / MANIFEST_FILE}: partitions are not in the store layout")
    return partitions


def _equal_share_bundles(
    la_codes: list[str], sizes: list[int], target_bytes: int, min_bundles: int
) -> list[tuple[str, ...]]:
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


def _la_rows(pop: pl.DataFrame) -> pl.DataFrame:
    return pop.filter(pl.col("la_code").is_in(sorted(refdata.la_codes()))).select(
        "la_code", "sex", "age_band_esp", "age_band", pl.col("population").cast(pl.Float64)
    )
