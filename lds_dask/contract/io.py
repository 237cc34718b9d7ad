"""Reading raw extracts: CSV or parquet files, or directories of them.

CSV is read as text and parsed by the schema validator, so an unparseable value becomes a
quarantined row (``<field>:dtype``) rather than a failed file. A file that cannot be read
at all raises :class:`~lds_dask.contract.schemas.SchemaError` with a one-line message naming it.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lds_dask.contract.schemas import SchemaError, TableSchema, check_columns

SUFFIXES = (".csv", ".parquet")


def list_input_files(paths: list[str | Path]) -> list[Path]:
    """Expand files and directories into a sorted list of CSV/parquet files."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise SchemaError(f"{p}: no such file or directory")
    if not files:
        raise SchemaError(f"{', '.join(map(str, paths))}: no .csv or .parquet files found")
    return files


def read_table_file(path: Path, schema: TableSchema) -> pl.DataFrame:
    """Read one extract: CSV as strings, parquet as stored. Checks the column set."""
    if path.is_file() and path.stat().st_size == 0:
        raise SchemaError(f"{path}: empty file (no header)")
    try:
        if path.suffix == ".csv":
            df = pl.read_csv(path, infer_schema=False)
        elif path.suffix == ".parquet":
            df = pl.read_parquet(path)
        else:
            raise SchemaError(
                f"{path}: unsupported file type {path.suffix!r} (use .csv or .parquet)"
            )
    except SchemaError:
        raise
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SchemaError(f"{path}: cannot read as {path.suffix[1:]}: {first[:200]}") from None
    check_columns(df.columns, schema, str(path))
    if path.suffix == ".parquet":
        check_stored_types(df, schema, str(path))
    return df


def _compatible(stored: pl.DataType, wanted: str) -> bool:
    if stored == pl.String or stored == pl.Null:
        return True  # text is parsed by the validator, value by value
    if wanted == "date":
        return stored in (pl.Date, pl.Datetime) or isinstance(stored, pl.Datetime)
    if wanted == "bool":
        return stored == pl.Boolean
    if wanted.startswith("int"):
        return stored.is_integer()
    if wanted == "float64":
        return stored.is_numeric()
    return False  # a string field stored as anything but text


def check_stored_types(df: pl.DataFrame, schema: TableSchema, source: str) -> None:
    """Raise when a typed (parquet) column cannot hold the schema's type at all."""
    for f in schema.fields:
        stored = df.schema[f.name]
        if not _compatible(stored, f.dtype):
            raise SchemaError(
                f"{source}: column {f.name} is stored as {stored}, "
                f"schema {schema.name} wants {f.dtype}"
            )
