"""Write small stores by hand, in the documented layout, for tests and examples.

``write_store`` lays records (and survey responses) out exactly as docs/architecture.md
describes the ingest store, without ingest's validation: the cube's spec tests use it to
feed hand-written record tables straight to ``build_cube``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl

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
    """Write ``records`` (and ``survey``) as STORE/records|survey/la_code=X/part-0.parquet."""
    store = Path(store)
    _write_partitions(store / "records", records, "specimen_date")
    if survey is not None:
        _write_partitions(store / "survey", survey, "visit_date")
    (store / "_store.json").write_text(
        json.dumps({"format_version": 1, "created": dt.datetime.now(dt.UTC).isoformat()})
    )
    rows = records.group_by("la_code").len().sort("la_code").iter_rows()
    (store / "_manifest.json").write_text(
        json.dumps({"partitions": {code: {"rows": n} for code, n in rows}}, sort_keys=True)
    )
    return store


def _write_partitions(root: Path, frame: pl.DataFrame, sort_by: str) -> None:
    for (code,), part in frame.partition_by("la_code", as_dict=True).items():
        folder = root / f"la_code={code}"
        folder.mkdir(parents=True, exist_ok=True)
        part.drop("la_code").sort(sort_by).write_parquet(folder / "part-0.parquet")
