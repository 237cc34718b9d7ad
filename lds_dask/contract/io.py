"""Reading raw extracts: CSV or parquet files, or directories of them.

CSV is read as text and parsed by the schema validator, so an unparseable value becomes a
quarantined row (``<field>:dtype``) rather than a failed file. A file that cannot be read
at all raises :class:`~lds_dask.contract.schemas.SchemaError` with a one-line message
naming the file, the line (CSV) or row group (parquet), the column and the rule. A
reader's own message is never shown: it can quote the record it failed on.

Every input is accounted for: suffixes are matched case-insensitively, and a file in an
input directory that is not read is listed with the reason (:class:`InputFiles`). A header
name given twice is an error. A CSV line holding nothing but spaces and separators is not
a row; a header-only CSV or a parquet file without rows is a file of zero rows.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from lds_dask.contract.csv_faults import NOT_UTF8, locate_csv_fault, record_fault
from lds_dask.contract.schemas import SchemaError, TableSchema, check_columns

SUFFIXES = (".csv", ".parquet")
HEADER_BYTES = 1 << 20  # a header line longer than this is not a header
# What a reader raises on a file it cannot read; MemoryError and bugs are not among them.
READ_ERRORS = (
    pl.exceptions.PolarsError,
    pl.exceptions.PanicException,
    OSError,
    ValueError,  # pyarrow's ArrowInvalid among them
    UnicodeDecodeError,
)


@dataclass(frozen=True)
class InputFiles:
    """The files to read, sorted within each directory, and the files of the input
    directories that are not read, each with the reason."""

    files: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...] = ()

    def skipped_lines(self) -> list[str]:
        return [skipped_line(path, why) for path, why in self.skipped]


def skipped_line(path: Path | str, why: str) -> str:
    """How a file that is not read is listed (console and run report)."""
    return f"{path}: skipped ({why})"


def list_input_files(paths: list[str | Path]) -> list[Path]:
    """The CSV/parquet files to read under ``paths`` (see :func:`find_input_files`)."""
    return list(find_input_files(paths).files)


def find_input_files(paths: list[str | Path]) -> InputFiles:
    """Expand files and directories into the CSV/parquet files to read (any case of
    suffix). A file named on its own is always read; in a directory, any other file is
    listed as skipped."""
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(f for f in p.rglob("*") if not f.is_dir()):
                why = skip_reason(f)
                (skipped.append((f, why)) if why else files.append(f))
        elif p.is_file():
            files.append(p)
        else:
            raise SchemaError(f"{p}: no such file or directory")
    if not files:
        also = f" ({len(skipped)} other file(s) skipped)" if skipped else ""
        raise SchemaError(f"{', '.join(map(str, paths))}: no .csv or .parquet files found{also}")
    return InputFiles(tuple(files), tuple(skipped))


def skip_reason(path: Path) -> str | None:
    """Why a file found in an input directory is not read (None: it is read)."""
    if not path.is_file():
        return "not a regular file"
    if path.suffix.lower() not in SUFFIXES:
        return "not a .csv or .parquet file"
    return None


def file_kind(path: Path) -> str:
    """``csv`` or ``parquet`` (any case of suffix); else a SchemaError naming the file."""
    kind = path.suffix.lower().lstrip(".")
    if f".{kind}" not in SUFFIXES:
        raise SchemaError(f"{path}: unsupported file type {path.suffix!r} (use .csv or .parquet)")
    return kind


def read_table_file(path: Path, schema: TableSchema, row_index: str | None = None) -> pl.DataFrame:
    """Read one extract: CSV as strings, parquet as stored; checks the header first.

    ``row_index`` adds a 1-based Int64 column of that name: the row's position in the file
    (a blank CSV line keeps its number, so it is the line number minus one when no quoted
    value spans lines)."""
    kind = file_kind(path)
    columns = check_file(path, schema)
    try:
        df = pl.read_csv(path, infer_schema=False) if kind == "csv" else pl.read_parquet(path)
    except READ_ERRORS:
        raise SchemaError(f"{path}: cannot read as {kind}: {locate_fault(path, columns)}") from None
    if row_index is not None:
        df = df.with_row_index(row_index, offset=1).with_columns(pl.col(row_index).cast(pl.Int64))
    return drop_blank_lines(df, columns) if kind == "csv" else df


def check_file(path: Path, schema: TableSchema) -> list[str]:
    """Check a file's header (and a parquet file's column types) without reading its rows;
    returns its column names. Cheap, so a run can fail fast before it starts a cluster."""
    if path.is_file() and path.stat().st_size == 0:
        raise SchemaError(f"{path}: empty file (no header)")
    columns = read_header(path)
    check_header(columns, schema, str(path))
    if file_kind(path) == "parquet":
        check_stored_types(parquet_types(path), schema, str(path))
    return columns


def source_names(paths: list[Path]) -> list[str]:
    """A distinct name for each file, for what is written about it (its quarantine file):
    its path from the files' common folder with ``/`` as ``__`` and no suffix; a name an
    earlier file took gets ``-<position>`` (``a.csv``, ``a.parquet`` -> ``a``, ``a-1``)."""
    full = [p.resolve() for p in paths]
    root = Path(os.path.commonpath([p.parent for p in full])) if full else Path()
    names: list[str] = []
    for i, p in enumerate(full):
        base = "__".join(p.relative_to(root).with_suffix("").parts)
        name, n = base, i
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def write_quarantine(rejected: pl.DataFrame, path: Path, source: Path) -> int:
    """Rejected rows as text + reason + ``source_file`` + ``source_row`` (sorted), written
    to ``path``; no file when there are none. Returns the rows written."""
    if rejected.height == 0:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    rejected.with_columns(
        pl.col("source_row").cast(pl.Int64), source_file=pl.lit(str(source))
    ).sort("source_row").write_parquet(path)
    return rejected.height


def read_header(path: Path) -> list[str]:
    """The column names of a CSV (its first line) or parquet file, read without the data."""
    if file_kind(path) == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_schema(path).names
        except READ_ERRORS:
            raise SchemaError(f"{path}: cannot read as parquet: no readable footer") from None
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if b"\n" not in head and len(head) == HEADER_BYTES:
        raise SchemaError(f"{path}: cannot read as csv: line 1 has no end in its first 1 MiB")
    try:
        line = head.split(b"\n", 1)[0].decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise SchemaError(f"{path}: cannot read as csv: line 1 (the header): {NOT_UTF8}") from None
    _, rule = record_fault(line)
    if rule is not None:
        raise SchemaError(f"{path}: cannot read as csv: line 1 (the header): {rule}")
    return next(csv.reader([line]), [])


def check_header(columns: list[str], schema: TableSchema, source: str) -> None:
    """Raise when a column name is given twice or a schema column is missing.

    A repeated schema column is named; another repeated name is told by position only,
    since a file without a header has a record where the header should be."""
    repeated = [name for name, n in Counter(columns).items() if n > 1]
    if repeated:
        known = [name for name in repeated if name in schema.columns]
        where = [str(i + 1) for i, name in enumerate(columns) if name in repeated]
        what = f"column(s) {', '.join(known)}" if known else "a column name"
        raise SchemaError(
            f"{source}: {what} named more than once (columns {', '.join(where)}); "
            "each column must be named once"
        )
    check_columns(columns, schema, source)


def drop_blank_lines(df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Without the rows of blank CSV lines: every field empty, the first at most spaces
    (a line of spaces is one field). Cheap when there are none: one null check."""
    if df.height == 0 or not columns:
        return df
    first, rest = pl.col(columns[0]), [pl.col(c).is_null() for c in columns[1:]]
    maybe = df.select(pl.all_horizontal(rest) if rest else pl.repeat(True, pl.len()))[:, 0]
    if not maybe.any():
        return df
    blank = maybe & df.select(first.is_null() | (first.str.strip_chars() == ""))[:, 0]
    return df.filter(~blank.fill_null(False))


def locate_fault(path: Path, columns: list[str]) -> str:
    """Where a file the reader rejected goes wrong, without any value from it."""
    if file_kind(path) == "parquet":
        return locate_parquet_fault(path)
    fault = locate_csv_fault(path, len(columns))
    if fault is None:
        return "malformed CSV (the reader failed; no fault of a known kind was found)"
    return fault.describe(columns)


def locate_parquet_fault(path: Path) -> str:
    """The first row group and column that cannot be decoded."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    first_row = 1
    for g in range(pf.num_row_groups):
        rows = pf.metadata.row_group(g).num_rows
        for name in pf.schema_arrow.names:
            try:
                pf.read_row_group(g, columns=[name])
            except READ_ERRORS:
                span = f"rows {first_row:,}-{first_row + rows - 1:,}"
                return (
                    f"row group {g + 1} of {pf.num_row_groups} ({span}), column {name}: "
                    "cannot be decoded (corrupt or truncated data)"
                )
        first_row += rows
    return "cannot be decoded (no single row group and column fails on its own)"


def parquet_types(path: Path) -> dict[str, pl.DataType]:
    """The polars type of each column of a parquet file, from its footer."""
    try:
        return dict(pl.read_parquet_schema(path))
    except READ_ERRORS:
        raise SchemaError(f"{path}: cannot read as parquet: no readable footer") from None


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


def check_stored_types(types: dict[str, pl.DataType], schema: TableSchema, source: str) -> None:
    """Raise when a typed (parquet) column cannot hold the schema's type at all."""
    for f in schema.fields:
        stored = types[f.name]
        if not _compatible(stored, f.dtype):
            raise SchemaError(
                f"{source}: column {f.name} is stored as {stored} (every row group), "
                f"schema {schema.name} wants {f.dtype}"
            )
