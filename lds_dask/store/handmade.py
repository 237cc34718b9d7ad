"""Write small stores by hand, in the documented layout, for tests and examples.

``write_store`` lays records (and survey responses) out exactly as docs/architecture.md
describes the ingest store, without ingest's validation: the cube's spec tests use it to
feed hand-written record tables straight to ``build_cube``. It writes ``_store.json`` and a
``_manifest.json`` listing every partition with its sha256 and rows, as a commit does, so
the store passes the checks every reader makes (``lds_dask.store.read.Store``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from lds_dask import __version__
from lds_dask.runtime.hashing import file_sha256
from lds_dask.store.layout import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    STORE_FILE,
    partition_path,
    write_json_atomic,
)

RECORD_DEFAULTS = {
    "test_type": "PCR",
    "pillar": 2,
    "lsoa11_code": None,
    "age": 40,
    "sex": "F",
    "ethnicity": "WHITE",
    "is_symptomatic": None,
}
RECORD_TYPES = {
    "test_id": pl.String,
    "person_id": pl.String,
    "specimen_date": pl.Date,
    "result": pl.String,
    "test_type": pl.String,
    "pillar": pl.Int8,
    "lsoa11_code": pl.String,
    "la_code": pl.String,
    "age": pl.Int16,
    "sex": pl.String,
    "ethnicity": pl.String,
    "is_symptomatic": pl.Boolean,
}


def record_frame(rows: list[dict]) -> pl.DataFrame:
    """Test records from dicts; missing fields take :data:`RECORD_DEFAULTS`."""
    full = [{**RECORD_DEFAULTS, **r} for r in rows]
    return pl.DataFrame(full, schema=RECORD_TYPES)


def write_store(store: Path, records: pl.DataFrame, survey: pl.DataFrame | None = None) -> Path:
    """Write ``records`` (and ``survey``) as STORE/records|survey/la_code=X/part-0.parquet,
    with the store marker and a manifest listing each partition (file, sha256, rows)."""
    store = Path(store)
    partitions = {"records": _write_partitions(store, "records", records, "specimen_date")}
    if survey is not None:
        partitions["survey"] = _write_partitions(store, "survey", survey, "visit_date")
    write_json_atomic(
        store / STORE_FILE,
        {
            "format_version": FORMAT_VERSION,
            "lds_dask_version": __version__,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    manifest = {"format_version": FORMAT_VERSION, "files": {}, "partitions": partitions}
    write_json_atomic(store / MANIFEST_FILE, {**manifest, "runs": []})
    return store


def _write_partitions(store: Path, table: str, frame: pl.DataFrame, sort_by: str) -> dict:
    """One sorted parquet file per LA; returns the manifest entries, by LA code."""
    entries = {}
    for (code,), part in sorted(frame.partition_by("la_code", as_dict=True).items()):
        rel = partition_path(table, code)
        (store / rel).parent.mkdir(parents=True, exist_ok=True)
        part.drop("la_code").sort(sort_by).write_parquet(store / rel)
        entries[code] = {"file": rel, "sha256": file_sha256(store / rel), "rows": part.height}
    return entries
