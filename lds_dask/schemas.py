"""Data contracts: load the ``schemas/*.yaml`` files and derive everything else from them.

A schema declares each field's name, dtype, nullability, constraints (regex, enum,
min/max, date range, membership of the reference geography, uniqueness), description and
unit. From it come the pyarrow and polars schemas handed to Dask, the generator's columns,
the docs, and :func:`validate_frame`, the vectorised validator that splits a frame into
valid rows and rejected rows with a reason code ``<field>:<rule>``.

Reason codes never carry a value: a personal field is only ever named, never shown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import polars as pl
import pyarrow as pa
import yaml

from lds_dask import refdata

# Installed wheels carry the schemas inside the package; a source checkout reads schemas/.
_SCHEMA_DIRS = (Path(__file__).parent / "_schemas", Path(__file__).parents[1] / "schemas")

POLARS_TYPES = {
    "string": pl.String,
    "date": pl.Date,
    "bool": pl.Boolean,
    "int8": pl.Int8,
    "int16": pl.Int16,
    "int32": pl.Int32,
    "int64": pl.Int64,
    "float64": pl.Float64,
}
ARROW_TYPES = {
    "string": pa.string(),
    "date": pa.date32(),
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
}
CONSTRAINT_KINDS = frozenset({"regex", "enum", "min", "max", "in_refdata"})
REFDATA_SETS = {
    "la": lambda: pl.Series(sorted(refdata.la_codes()), dtype=pl.String),
    "lsoa": lambda: refdata.lsoas()["lsoa11_code"],
}
TRUE_STRINGS, FALSE_STRINGS = ("true", "t", "1", "yes", "y"), ("false", "f", "0", "no", "n")


class SchemaError(ValueError):
    """A frame or file does not have the shape a schema demands (missing column, bad file)."""


@dataclass(frozen=True)
class Field:
    """One column of a table contract."""

    name: str
    dtype: str
    nullable: bool
    description: str
    unit: str
    constraints: dict = field(default_factory=dict)
    unique: bool = False
    personal: bool = False

    @property
    def polars_type(self) -> pl.DataType:
        return POLARS_TYPES[self.dtype]


@dataclass(frozen=True)
class TableSchema:
    """A table contract: its fields in order plus cross-field checks."""

    name: str
    description: str
    fields: tuple[Field, ...]
    checks: tuple[dict, ...] = ()

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def personal_columns(self) -> list[str]:
        return [f.name for f in self.fields if f.personal]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {f.name: f.polars_type for f in self.fields}

    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field(
                    f.name,
                    ARROW_TYPES[f.dtype],
                    nullable=f.nullable,
                    metadata={"description": f.description, "unit": f.unit},
                )
                for f in self.fields
            ],
            metadata={"table": self.name, "description": self.description},
        )


def schema_dir() -> Path:
    return next(d for d in _SCHEMA_DIRS if d.is_dir())


def table_names() -> list[str]:
    return sorted(p.stem for p in schema_dir().glob("*.yaml"))


@cache
def load_schema(table: str) -> TableSchema:
    """Load ``schemas/<table>.yaml``; raise :class:`SchemaError` naming unknown tables."""
    path = schema_dir() / f"{table}.yaml"
    if not path.exists():
        raise SchemaError(f"unknown table {table!r}; known: {', '.join(table_names())}")
    spec = yaml.safe_load(path.read_text())
    fields = tuple(_parse_field(table, f) for f in spec["fields"])
    return TableSchema(
        spec["table"], spec["description"].strip(), fields, tuple(spec.get("checks", ()))
    )


def _parse_field(table: str, spec: dict) -> Field:
    unknown = set(spec.get("constraints", {})) - CONSTRAINT_KINDS
    if unknown or spec["dtype"] not in POLARS_TYPES:
        raise SchemaError(f"{table}.{spec['name']}: bad dtype or constraint {sorted(unknown)}")
    return Field(
        spec["name"],
        spec["dtype"],
        spec["nullable"],
        spec["description"],
        spec["unit"],
        dict(spec.get("constraints", {})),
        spec.get("unique", False),
        spec.get("personal", False),
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


def check_columns(columns: list[str], schema: TableSchema, source: str = "frame") -> None:
    """Raise :class:`SchemaError` when required columns are missing."""
    missing = [c for c in schema.columns if c not in columns]
    if missing:
        raise SchemaError(
            f"{source}: missing column(s) {', '.join(missing)} required by schema {schema.name}"
        )


def validate_frame(
    df: pl.DataFrame,
    table: str | TableSchema,
    *,
    today: dt.date | None = None,
    source: str = "frame",
) -> ValidationResult:
    """Split ``df`` into schema-valid rows and rejected rows with a ``reason`` code.

    ``df`` may hold the schema's types (parquet) or strings (CSV read as text); strings are
    parsed and an unparseable value is rejected as ``<field>:dtype``. Extra columns are
    dropped from the valid rows. Uniqueness keeps the first occurrence.
    """
    schema = load_schema(table) if isinstance(table, str) else table
    check_columns(df.columns, schema, source)
    today = today or dt.date.today()
    raw = df.select(schema.columns)
    typed = raw.select(_cast(raw, f) for f in schema.fields)
    rules = _rule_masks(raw, typed, schema, today)
    typed_plus = _with_check_columns(typed, schema)
    flags = typed_plus.select(**{code: mask.fill_null(False) for code, mask in rules})
    counts = {code: n for code, n in zip(flags.columns, flags.sum().row(0), strict=True) if n}
    reason = (
        pl.coalesce([pl.when(pl.col(c)).then(pl.lit(c)) for c in flags.columns])
        if flags.width
        else pl.lit(None, pl.String)
    )
    bad = flags.select(reason.alias("reason"))["reason"]
    is_bad = bad.is_not_null()
    rejected = (
        raw.filter(is_bad)
        .with_columns(pl.all().cast(pl.String))
        .with_columns(reason=bad.filter(is_bad))
    )
    return ValidationResult(typed.filter(~is_bad), rejected, counts)


def _cast(raw: pl.DataFrame, f: Field) -> pl.Expr:
    col = pl.col(f.name)
    if raw.schema[f.name] != pl.String:
        return col.cast(f.polars_type, strict=False)
    text = col.str.strip_chars()
    if f.dtype == "string":  # an empty CSV cell is a null, as in every other dtype
        return pl.when(text == "").then(None).otherwise(col).alias(f.name)
    if f.dtype == "date":
        return text.str.to_date("%Y-%m-%d", strict=False).alias(f.name)
    if f.dtype == "bool":
        low = text.str.to_lowercase()
        return (
            pl.when(low.is_in(TRUE_STRINGS))
            .then(True)
            .when(low.is_in(FALSE_STRINGS))
            .then(False)
            .otherwise(None)
            .alias(f.name)
        )
    return text.cast(f.polars_type, strict=False)


def _rule_masks(
    raw: pl.DataFrame, typed: pl.DataFrame, schema: TableSchema, today: dt.date
) -> list[tuple[str, pl.Expr]]:
    rules: list[tuple[str, pl.Expr]] = []
    for f in schema.fields:
        rules += _field_masks(raw, f, today)
    for check in schema.checks:
        rules.append(_check_mask(check))
    return rules


def _field_masks(raw: pl.DataFrame, f: Field, today: dt.date) -> list[tuple[str, pl.Expr]]:
    col, c = pl.col(f.name), f.constraints
    given = raw[f.name].is_not_null()
    if raw.schema[f.name] == pl.String:  # an empty CSV cell is not a value
        given &= raw[f.name] != ""
    was_given = pl.lit(given)
    masks = [(f"{f.name}:dtype", was_given & col.is_null())]
    if not f.nullable:
        masks.append((f"{f.name}:not_null", ~was_given))
    if "regex" in c:
        masks.append((f"{f.name}:regex", ~col.cast(pl.String).str.contains(c["regex"])))
    if "enum" in c:
        masks.append((f"{f.name}:enum", ~col.is_in(c["enum"])))
    if "min" in c:
        masks.append((f"{f.name}:min", col < _bound(c["min"], today)))
    if "max" in c:
        masks.append((f"{f.name}:max", col > _bound(c["max"], today)))
    if "in_refdata" in c:
        known = _refdata_set(c["in_refdata"])
        masks.append((f"{f.name}:in_refdata", ~col.is_in(known.implode())))
    if f.unique:
        masks.append((f"{f.name}:unique", col.is_not_null() & ~col.is_first_distinct()))
    return masks


def _bound(value, today: dt.date):
    return today if value == "today" else value


@cache
def _refdata_set(name: str) -> pl.Series:
    return REFDATA_SETS[name]()


HOME_LA = "__lsoa_home_la"


def _with_check_columns(typed: pl.DataFrame, schema: TableSchema) -> pl.DataFrame:
    """Add the helper columns cross-field checks read (a join is ~100x a replace here)."""
    for check in schema.checks:
        if check["rule"] == "lsoa_in_la":
            lsoa, _ = check["fields"]
            lookup = refdata.lsoas().select(
                pl.col("lsoa11_code").alias(lsoa), pl.col("la_code").alias(HOME_LA)
            )
            typed = typed.join(lookup, on=lsoa, how="left", maintain_order="left")
    return typed


def _check_mask(check: dict) -> tuple[str, pl.Expr]:
    if check["rule"] != "lsoa_in_la":
        raise SchemaError(f"unknown check {check['rule']!r}")
    lsoa, la = check["fields"]
    home = pl.col(HOME_LA)
    return f"{lsoa}:lsoa_in_la", home.is_not_null() & (home != pl.col(la))


def render_schema_docs() -> str:
    """Markdown reference of every table contract (committed as docs/schemas.md)."""
    out = [
        "# Data contracts\n",
        "Generated from `schemas/*.yaml` by "
        "`python -m lds_dask.schemas > docs/schemas.md`; a test keeps it in step.\n",
    ]
    for name in table_names():
        s = load_schema(name)
        out += [
            f"\n## `{name}`\n",
            f"{s.description}\n",
            "\n| field | dtype | nullable | constraints | unit | description |",
            "|---|---|---|---|---|---|",
        ]
        for f in s.fields:
            rules = dict(f.constraints) | ({"unique": True} if f.unique else {})
            text = ", ".join(f"{k}: {v}" for k, v in rules.items()).replace("|", "\\|")
            pii = " (personal: never shown)" if f.personal else ""
            out.append(
                f"| `{f.name}` | {f.dtype} | {'yes' if f.nullable else 'no'} | {text} "
                f"| {f.unit} | {f.description}{pii} |"
            )
        for check in s.checks:
            out.append(f"\nCross-field check `{check['rule']}`: {check['description']}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render_schema_docs(), end="")
