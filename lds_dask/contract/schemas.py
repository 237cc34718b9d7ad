"""Data contracts: load the ``schemas/*.yaml`` files and derive everything else from them.

A schema declares each field's name, dtype, nullability, constraints (regex, enum,
min/max, date range, membership of the reference geography, uniqueness), description and
unit. From it come the pyarrow and polars schemas handed to Dask, the generator's columns,
the docs, the code tables of categorical fields, and the validator
(:func:`lds_dask.contract.validation.validate_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import polars as pl
import pyarrow as pa
import yaml

from lds_dask.contract import refdata
from lds_dask.runtime.errors import BadInputError

# Installed wheels carry the schemas inside the package; a source checkout reads schemas/.

_PACKAGE = Path(__file__).resolve().parents[1]
_SCHEMA_DIRS = (_PACKAGE / "_schemas", _PACKAGE.parent / "schemas")

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
    "lsoa": lambda: refdata.lsoas()["lsoa11_code"].sort(),
}


class SchemaError(BadInputError, ValueError):
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


def check_columns(columns: list[str], schema: TableSchema, source: str = "frame") -> None:
    """Raise :class:`SchemaError` when required columns are missing."""
    missing = [c for c in schema.columns if c not in columns]
    if missing:
        raise SchemaError(
            f"{source}: missing column(s) {', '.join(missing)} required by schema {schema.name}"
        )


class CodeTable:
    """The values of a categorical field, each coded by its row number in ``values``.

    Ingest stages and writes categorical fields as these small integer codes (UInt8 for
    up to 256 values, UInt16 up to 65,536). Encoding is an ``Enum`` cast.
    """

    def __init__(self, name: str, values: pl.Series):
        self.name, self.values = name, values.rename(name)
        self.enum = pl.Enum(values)
        self._encoders: dict[str, pl.Expr] = {}

    def encode(self, column: str) -> pl.Expr:
        """Codes of a column of strings; null for null or unknown values.

        One expression per column, built once: polars converts the ``Enum`` to its engine
        form when an expression is built, and for the 32,844 LSOA codes that took ~10 ms,
        paid for every input file before this cache."""
        if column not in self._encoders:
            self._encoders[column] = self._codes(pl.col(column))
        return self._encoders[column]

    def encode_series(self, strings: pl.Series) -> pl.Series:
        return self._codes(strings)

    def _codes(self, strings: pl.Expr | pl.Series) -> pl.Expr | pl.Series:
        return strings.cast(pl.String).cast(self.enum, strict=False).to_physical()

    def decode(self, codes: pl.Expr) -> pl.Expr:
        """The strings of an expression of codes (the inverse of :meth:`encode`)."""
        return pl.lit(self.values).gather(codes)


@cache
def _code_table(name: str, values: tuple[str, ...] | None = None) -> CodeTable:
    return CodeTable(name, pl.Series(values) if values else REFDATA_SETS[name]())


def refdata_codes(name: str) -> CodeTable:
    """The code table of a refdata set (``la``, ``lsoa``)."""
    return _code_table(name)


def code_table(f: Field) -> CodeTable | None:
    """The code table of a categorical string field, or None for any other field.

    A categorical field is a string with an ``enum`` (codes in declared order) or an
    ``in_refdata`` constraint (the refdata codes, sorted).
    """
    if f.dtype != "string":
        return None
    if "in_refdata" in f.constraints:
        return refdata_codes(f.constraints["in_refdata"])
    if "enum" in f.constraints:
        values = tuple(f.constraints["enum"])
        return _code_table(f"enum:{','.join(values)}", values)
    return None


def render_schema_docs() -> str:
    """Markdown reference of every table contract (committed as docs/schemas.md)."""
    out = [
        "# Data contracts\n",
        "Generated from `schemas/*.yaml` by "
        "`python -m lds_dask.contract.schemas > docs/schemas.md`; a test keeps it in step.\n",
        "\nDates, numbers, flags and free text (identifiers included) are trimmed of leading "
        "and trailing spaces before they are checked and stored (` T1` and `T1` are one "
        "`test_id`); a categorical value (an enum or reference code) must match exactly "
        "(` F` fails `enum`); a cell of only spaces fails its `dtype` rule. A CSV line of "
        "only spaces and separators is not a row.\n",
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
