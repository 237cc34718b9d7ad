"""The vectorised validator: split a frame into schema-valid rows and rejected rows.

Every rule of a schema (:mod:`lds_dask.contract.schemas`) becomes a boolean mask named by its reason
code ``<field>:<rule>``; a rejected row carries the first failing rule in schema order.
Reason codes never carry a value: a personal field is only ever named, never shown.

Clean rows are the bulk of any extract, so the work is split in two:

1. one combined mask over every row finds the rows that break any rule. Categorical string
   fields (an ``enum`` or ``in_refdata`` constraint) are looked up once in their code table
   (:func:`~lds_dask.contract.schemas.code_table`), which answers the enum, refdata and cross-field
   checks; a regex is skipped here when every refdata code matches it, since then a value
   found in the refdata matches too;
2. the reason codes and per-rule counts are worked out on the flagged rows only.

With ``coded=True`` the categorical fields of the valid rows come back as their integer
codes (row numbers in the code table), the form ingest stages and writes them in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl

from lds_dask.contract import refdata
from lds_dask.contract.io import read_table_file
from lds_dask.contract.schemas import (
    POLARS_TYPES,
    Field,
    SchemaError,
    TableSchema,
    check_columns,
    code_table,
    load_schema,
    refdata_codes,
)

TRUE_STRINGS, FALSE_STRINGS = ("true", "t", "1", "yes", "y"), ("false", "f", "0", "no", "n")
HASH_SEED = 20210104
GIVEN, CODE, FIRST, HOME_LA = "__given_", "__code_", "__first_", "__home_la"
SOURCE_ROW = Field(
    "source_row",
    "int64",
    False,
    "Row number in the source file (1 = first data row).",
    "row number",
)


@dataclass(frozen=True)
class ValidationResult:
    """Valid rows (typed as the schema) and rejected rows (as read, plus ``reason``).

    ``rule_counts`` counts rows failing each rule independently; a row failing several
    rules is rejected once, under the first in schema order.
    """

    valid: pl.DataFrame
    rejected: pl.DataFrame
    rule_counts: dict[str, int]

    @property
    def rows_in(self) -> int:
        return self.valid.height + self.rejected.height


def validate_frame(
    df: pl.DataFrame,
    table: str | TableSchema,
    *,
    today: dt.date | None = None,
    source: str = "frame",
    coded: bool = False,
) -> ValidationResult:
    """Split ``df`` into schema-valid rows and rejected rows with a ``reason`` code.

    ``df`` may hold the schema's types (parquet) or strings (CSV read as text); strings are
    parsed and an unparseable value, or a cell of only spaces, is rejected as
    ``<field>:dtype``. An empty cell is a missing value. Text is trimmed like every other
    value: leading and trailing spaces are dropped before a value is checked, compared for
    uniqueness and kept, so ``" T1"`` and ``"T1"`` are one test_id; a categorical value is
    looked up as given, so ``" F"`` fails its enum. Extra columns are dropped from the
    valid rows. Uniqueness keeps the first occurrence.
    """
    schema = load_schema(table) if isinstance(table, str) else table
    check_columns(df.columns, schema, source)
    raw = df.select(schema.columns)
    work = prepare(raw, schema)
    rules = rule_masks(raw, schema, today or dt.date.today())
    fast = [expr for _, expr, is_fast in rules if is_fast]
    bad = work.select(pl.any_horizontal(fast) if fast else pl.repeat(False, pl.len()))[:, 0]
    out = [
        pl.col(CODE + f.name if coded and code_table(f) else f.name).alias(f.name)
        for f in schema.fields
    ]
    text = raw.filter(bad).with_columns(pl.all().cast(pl.String))
    if text.height == 0:
        empty = text.with_columns(reason=pl.lit(None, pl.String))
        return ValidationResult(work.select(out), empty, {})
    flags = work.filter(bad).select(**{code: expr for code, expr, _ in rules})
    counts = {code: n for code, n in zip(flags.columns, flags.sum().row(0), strict=True) if n}
    first = pl.coalesce([pl.when(pl.col(c)).then(pl.lit(c)) for c in flags.columns])
    rejected = text.with_columns(reason=flags.select(first)[:, 0])
    if rejected["reason"].null_count():
        raise AssertionError("validator: a flagged row fails no rule")  # a bug, never data
    return ValidationResult(work.filter(~bad).select(out), rejected, counts)


def validate_file(
    path: Path, table: str | TableSchema, *, today: dt.date | None = None, coded: bool = False
) -> ValidationResult:
    """Read and validate one file; every row, valid or rejected, carries its 1-based
    ``source_row`` (see :func:`~lds_dask.contract.io.read_table_file`)."""
    schema = load_schema(table) if isinstance(table, str) else table
    checked = dataclasses.replace(schema, fields=schema.fields + (SOURCE_ROW,))
    df = read_table_file(path, schema, row_index=SOURCE_ROW.name)
    return validate_frame(df, checked, today=today, source=str(path), coded=coded)


def prepare(raw: pl.DataFrame, schema: TableSchema) -> pl.DataFrame:
    """The typed columns plus the helper columns the rules read (given, code, first copy).

    Each step is one ``select`` over all fields: a handful of polars calls per frame, not
    several per field (each call costs ~0.1 ms, which adds up over a thousand files).
    """
    tables = {f.name: code_table(f) for f in schema.fields if code_table(f) is not None}
    codes = raw.select(t.encode(name).alias(CODE + name) for name, t in tables.items())
    known = all_known(raw, codes, list(tables))
    typed = raw.select(
        expr
        for f in schema.fields
        for expr in typed_and_given(f.name, raw.schema[f.name], f.dtype, f.name in known)
    )
    work = pl.concat([typed, codes], how="horizontal")
    work = work.with_columns(
        first_copies(work[f.name]).alias(FIRST + f.name) for f in schema.fields if f.unique
    )
    return work.with_columns(check_helper(check, schema) for check in schema.checks)


def all_known(raw: pl.DataFrame, codes: pl.DataFrame, names: list[str]) -> set[str]:
    """The categorical fields whose every value is a known code. Such a value is never
    empty nor blank, so those fields skip the blank checks."""
    if not names:
        return set()
    unknown = pl.concat([raw.select(names), codes], how="horizontal").select(
        (pl.col(CODE + name).is_null() & pl.col(name).is_not_null()).any().alias(name)
        for name in names
    )
    return {name for name, flag in unknown.row(0, named=True).items() if not flag}


def typed_and_given(name: str, raw: pl.DataType, dtype: str, known: bool) -> list[pl.Expr]:
    """The value as the schema type (unparseable and blank: null) and whether one was given
    (not null, and for text not empty)."""
    col = pl.col(name)
    given = col.is_not_null() if known or raw != pl.String else col.is_not_null() & (col != "")
    return [
        typed_value(col, raw, dtype, known).alias(name),
        given.fill_null(False).alias(GIVEN + name),
    ]


def typed_value(col: pl.Expr, raw: pl.DataType, dtype: str, known: bool) -> pl.Expr:
    """The value as the schema type; text is trimmed and parsed, blank or unparseable is null."""
    if known:
        return col
    if raw != pl.String:
        return col.cast(POLARS_TYPES[dtype], strict=False)
    text = col.str.strip_chars()
    if dtype == "string":
        return pl.when(text == "").then(None).otherwise(text)
    if dtype == "date":
        return text.str.to_date("%Y-%m-%d", strict=False)
    if dtype == "bool":
        low = text.str.to_lowercase()
        return (
            pl.when(low.is_in(TRUE_STRINGS)).then(True).when(low.is_in(FALSE_STRINGS)).then(False)
        )
    return text.cast(POLARS_TYPES[dtype], strict=False)


def first_copies(s: pl.Series) -> pl.Series:
    """True where a value occurs for the first time (repeated nulls count as first).

    Comparing 64-bit hashes is several times faster than comparing strings; the rows whose
    hash repeats are then settled exactly, so a hash collision never rejects a row.
    """
    hashes = s.hash(HASH_SEED)
    first = hashes.is_first_distinct()
    if first.all():
        return first
    repeats = hashes.is_duplicated().arg_true()
    return first.scatter(repeats, s.gather(repeats).is_first_distinct())


def check_helper(check: dict, schema: TableSchema) -> pl.Expr:
    """The helper column of a cross-field check: for lsoa_in_la, the LSOA's home LA code."""
    if check["rule"] != "lsoa_in_la":
        raise SchemaError(f"unknown check {check['rule']!r}")
    lsoa, la = (schema.field(name) for name in check["fields"])
    if code_table(lsoa) is None or code_table(la) is None:
        raise SchemaError(f"{schema.name}: lsoa_in_la needs refdata-coded {lsoa.name}, {la.name}")
    homes = lsoa_home_la(lsoa.constraints["in_refdata"], la.constraints["in_refdata"])
    return pl.lit(homes).gather(pl.col(CODE + lsoa.name)).alias(HOME_LA)


@cache
def lsoa_home_la(lsoa_set: str, la_set: str) -> pl.Series:
    """The LA code of each code of the LSOA table (null when that LA is not in the LA set)."""
    table = pl.DataFrame({"lsoa11_code": refdata_codes(lsoa_set).values})
    lookup = refdata.lsoas().select("lsoa11_code", "la_code")
    homes = table.join(lookup, on="lsoa11_code", how="left", maintain_order="left")
    return refdata_codes(la_set).encode_series(homes["la_code"])


def rule_masks(
    raw: pl.DataFrame, schema: TableSchema, today: dt.date
) -> list[tuple[str, pl.Expr, bool]]:
    """(reason code, mask over the prepared frame, part of the fast pass) per rule, in order."""
    rules = []
    for f in schema.fields:
        rules += field_masks(f, raw.schema[f.name], today)
    for check in schema.checks:
        lsoa, la = check["fields"]
        home, code = pl.col(HOME_LA), pl.col(CODE + la)
        mask = home.is_not_null() & pl.col(GIVEN + la) & (code.is_null() | (home != code))
        rules.append((f"{lsoa}:lsoa_in_la", mask.fill_null(False), True))
    return rules


def field_masks(f, raw_dtype: pl.DataType, today: dt.date) -> list[tuple[str, pl.Expr, bool]]:
    col, c, given = pl.col(f.name), f.constraints, pl.col(GIVEN + f.name)
    coded = code_table(f) is not None
    unknown = col.is_not_null() & pl.col(CODE + f.name).is_null() if coded else None
    masks = []
    if raw_dtype != f.polars_type or raw_dtype == pl.String:  # a cell of spaces fails too
        masks.append(("dtype", given & col.is_null(), True))
    if not f.nullable:
        masks.append(("not_null", ~given, True))
    if "regex" in c:
        implied = "in_refdata" in c and refdata_matches(c["in_refdata"], c["regex"])
        masks.append(("regex", ~col.cast(pl.String).str.contains(c["regex"]), not implied))
    if "enum" in c:
        masks.append(("enum", unknown if coded else ~col.is_in(c["enum"]), True))
    if "min" in c:
        masks.append(("min", col < _bound(c["min"], today), True))
    if "max" in c:
        masks.append(("max", col > _bound(c["max"], today), True))
    if "in_refdata" in c:
        masks.append(("in_refdata", unknown, True))
    if f.unique:
        masks.append(("unique", col.is_not_null() & ~pl.col(FIRST + f.name), True))
    return [(f"{f.name}:{rule}", mask.fill_null(False), fast) for rule, mask, fast in masks]


def _bound(value, today: dt.date):
    return today if value == "today" else value


@cache
def refdata_matches(name: str, regex: str) -> bool:
    """Whether every code of a refdata set matches ``regex`` (then the regex is implied)."""
    return bool(refdata_codes(name).values.str.contains(regex).all())
