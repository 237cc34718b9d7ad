"""Writing one extract file: parquet straight from Arrow columns, or CSV via polars.

Clean parquet files never pass through polars: the record columns are built as Arrow
arrays from numpy (ids as string buffers, categories and codes as small dictionary arrays)
and written by pyarrow with no statistics and no stored Arrow schema (so every reader sees
plain strings). The personal identifiers (random, unique, fixed width) are nearly all of
the bytes: they skip dictionary encoding and use DELTA_LENGTH_BYTE_ARRAY with zstd level 1,
which leaves zstd the bare hex digits (a third faster than PLAIN, 10% smaller). Every other
column is dictionary/RLE encoded and left uncompressed: zstd there cost a fifth of the
write time for ~1% of the file size. The sha256 is taken from the bytes in memory,
so files are never read back. Dirty rows and CSV go through polars (see ``dirty.py``).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from lds_dask.contract.schemas import load_schema

PARQUET_OPTIONS = {"write_statistics": False, "store_schema": False}


@cache
def file_schema(table: str) -> pa.Schema:
    """The schema's Arrow types, every field nullable (dirty rows may hold nulls)."""
    schema = load_schema(table).arrow_schema()
    return pa.schema([pa.field(f.name, f.type) for f in schema]).with_metadata({})


def dates(monday, days: np.ndarray) -> pa.Array:
    """date32 array of ``monday + days``."""
    first = (np.datetime64(monday, "D") - np.datetime64(0, "D")).astype(np.int32)
    return pa.array(first + days.astype(np.int32)).view(pa.date32())


def labels(names, idx: np.ndarray) -> pa.DictionaryArray:
    """``names[idx]`` as a dictionary array (cheap to build and to write)."""
    return pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int8)), pa.array(names))


def codes(lookup: pa.StringArray, idx: np.ndarray, missing=None) -> pa.DictionaryArray:
    """``lookup[idx]`` (null where ``missing``) as a dictionary of only the codes used.

    The parquet writer takes a dictionary array as is, instead of hashing every string.
    """
    used = np.zeros(len(lookup), dtype=bool)
    used[idx] = True
    remap = (np.cumsum(used) - 1).astype(np.int32)
    return pa.DictionaryArray.from_arrays(
        pa.array(remap[idx], mask=missing), lookup.take(np.flatnonzero(used))
    )


def optional(values: np.ndarray, missing: np.ndarray, dtype) -> pa.Array:
    """``values`` as ``dtype`` with nulls where ``missing``."""
    return pa.array(values.astype(dtype), mask=missing)


def to_polars(table: pa.Table, name: str) -> pl.DataFrame:
    """An Arrow record table as a polars frame with the schema's plain types."""
    return pl.from_arrow(table.cast(file_schema(name)))


def write_file(data: pa.Table | pl.DataFrame, path: Path, fmt: str, name: str) -> str:
    """Write one file of table ``name``; return the sha256 of its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame = data if isinstance(data, pl.DataFrame) else to_polars(data, name)
        raw = frame.with_columns(pl.all().cast(pl.String)).write_csv().encode()
    else:
        if isinstance(data, pl.DataFrame):
            data = data.to_arrow().cast(file_schema(name))
        sink = pa.BufferOutputStream()
        pq.write_table(data, sink, **_column_options(name, data.column_names), **PARQUET_OPTIONS)
        raw = sink.getvalue()
    with open(path, "wb") as fh:
        fh.write(raw)
    return hashlib.sha256(raw).hexdigest()


def _column_options(name: str, columns: list[str]) -> dict:
    """Ids: DELTA_LENGTH_BYTE_ARRAY + zstd 1; other columns: dictionary, uncompressed."""
    ids = load_schema(name).personal_columns
    return {
        "use_dictionary": [c for c in columns if c not in ids],
        "column_encoding": dict.fromkeys(ids, "DELTA_LENGTH_BYTE_ARRAY"),
        "compression": {c: "zstd" if c in ids else "none" for c in columns},
        "compression_level": dict.fromkeys(ids, 1),
    }
