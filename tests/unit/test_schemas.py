"""Data contracts: every constraint type, edge values, and drift between schemas and consumers."""

import datetime as dt

import polars as pl
import pytest

from lds_dask.contract import refdata
from lds_dask.contract.schemas import (
    SchemaError,
    code_table,
    load_schema,
    render_schema_docs,
    table_names,
)
from lds_dask.contract.validation import validate_frame
from tests.conftest import REPO_ROOT

TODAY = dt.date(2026, 11, 24)


def good_record(**overrides) -> dict:
    row = {
        "test_id": "T1",
        "person_id": "P1",
        "specimen_date": "2020-10-01",
        "result": "POSITIVE",
        "test_type": "PCR",
        "pillar": "2",
        "lsoa11_code": "E01000001",
        "la_code": "E09000001",
        "age": "40",
        "sex": "F",
        "ethnicity": "WHITE",
        "is_symptomatic": "true",
    }
    return row | overrides


def reasons(*rows: dict) -> list:
    frame = pl.DataFrame(list(rows), schema=dict.fromkeys(rows[0], pl.String))
    result = validate_frame(frame, "test_records", today=TODAY)
    return result.rejected["reason"].to_list()


def test_a_good_record_passes_and_is_typed():
    frame = pl.DataFrame([good_record()], schema=dict.fromkeys(good_record(), pl.String))
    result = validate_frame(frame, "test_records", today=TODAY)
    assert result.rejected.height == 0 and result.valid.height == 1
    assert result.valid.schema == pl.Schema(load_schema("test_records").polars_schema())


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"age": "120"}, []),
        ({"age": "121"}, ["age:max"]),
        ({"age": "0"}, []),
        ({"age": "-1"}, ["age:min"]),
        ({"age": "999"}, ["age:max"]),
        ({"age": ""}, []),  # nullable
        ({"age": "forty"}, ["age:dtype"]),
        ({"la_code": "E07000004", "lsoa11_code": ""}, ["la_code:in_refdata"]),  # abolished 2020
        ({"la_code": "W06000001", "lsoa11_code": ""}, ["la_code:regex"]),
        ({"la_code": ""}, ["la_code:not_null"]),
        ({"lsoa11_code": "E0100001"}, ["lsoa11_code:regex"]),
        ({"lsoa11_code": "E01099999"}, ["lsoa11_code:in_refdata"]),
        ({"lsoa11_code": "E01000005", "la_code": "E08000003"}, ["lsoa11_code:lsoa_in_la"]),
        ({"lsoa11_code": ""}, []),
        ({"result": "INCONCLUSIVE"}, ["result:enum"]),
        ({"test_type": "ANTIBODY"}, ["test_type:enum"]),
        ({"pillar": "3"}, ["pillar:enum"]),
        ({"pillar": "two"}, ["pillar:dtype"]),
        ({"sex": "X"}, ["sex:enum"]),
        ({"ethnicity": "CHINESE"}, ["ethnicity:enum"]),
        ({"specimen_date": "2019-12-31"}, ["specimen_date:min"]),
        ({"specimen_date": "2020-01-01"}, []),
        ({"specimen_date": TODAY.isoformat()}, []),
        ({"specimen_date": "2026-11-25"}, ["specimen_date:max"]),
        ({"specimen_date": "2020-13-45"}, ["specimen_date:dtype"]),
        ({"person_id": ""}, ["person_id:not_null"]),
        ({"person_id": "   "}, ["person_id:dtype"]),  # spaces are not a missing value
        ({"sex": " "}, ["sex:dtype"]),
        ({"lsoa11_code": " "}, ["lsoa11_code:dtype"]),
        ({"is_symptomatic": "maybe"}, ["is_symptomatic:dtype"]),
        ({"is_symptomatic": ""}, []),
    ],
)
def test_each_constraint_and_edge_value(overrides, expected):
    assert reasons(good_record(**overrides)) == expected


def test_unique_keeps_first_occurrence():
    rows = [good_record(), good_record(person_id="P2"), good_record(test_id="T3")]
    assert reasons(*rows) == ["test_id:unique"]


def test_typed_parquet_input_is_validated_too():
    frame = pl.DataFrame([good_record(age="121")], schema=dict.fromkeys(good_record(), pl.String))
    typed = frame.with_columns(
        pl.col("age").cast(pl.Int64),
        pl.col("pillar").cast(pl.Int64),
        pl.col("specimen_date").str.to_date(),
    )
    result = validate_frame(typed, "test_records", today=TODAY)
    assert result.rejected["reason"].to_list() == ["age:max"]


def test_missing_column_is_a_schema_error_naming_it():
    frame = pl.DataFrame([good_record()]).drop("ethnicity")
    with pytest.raises(SchemaError, match="missing column.*ethnicity"):
        validate_frame(frame, "test_records")


def test_rejected_rows_keep_every_input_row():
    rows = [good_record(test_id=f"T{i}", age=str(115 + i)) for i in range(10)]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String))
    result = validate_frame(frame, "test_records", today=TODAY)
    assert result.valid.height + result.rejected.height == 10
    assert result.rule_counts == {"age:max": 4}


@pytest.mark.parametrize("table", table_names())
def test_schema_derivations_agree(table):
    schema = load_schema(table)
    assert schema.arrow_schema().names == schema.columns == list(schema.polars_schema())
    for f in schema.fields:
        assert f.description and f.unit, f"{table}.{f.name} lacks description or unit"


@pytest.mark.parametrize(
    ("table", "frame"),
    [
        ("la_lookup", refdata.las),
        ("lsoa_covariates", refdata.lsoas),
        ("population", refdata.population),
    ],
)
def test_packaged_refdata_satisfies_its_schema(table, frame):
    data = frame()
    schema = load_schema(table)
    assert set(data.columns) >= set(schema.columns)
    result = validate_frame(data, schema)
    assert result.rejected.height == 0, result.rule_counts


def test_required_test_record_columns_are_exactly_the_issue_list():
    assert load_schema("test_records").columns == [
        "test_id",
        "person_id",
        "specimen_date",
        "result",
        "test_type",
        "pillar",
        "lsoa11_code",
        "la_code",
        "age",
        "sex",
        "ethnicity",
        "is_symptomatic",
    ]


def test_committed_schema_docs_match_the_schemas():
    committed = (REPO_ROOT / "docs" / "schemas.md").read_text()
    assert committed == render_schema_docs(), (
        "regenerate: python -m lds_dask.contract.schemas > docs/schemas.md"
    )


def test_a_hash_collision_never_rejects_a_row(monkeypatch):
    """Uniqueness compares hashes first; rows whose hashes repeat are settled exactly."""
    monkeypatch.setattr(pl.Series, "hash", lambda self, seed=0: pl.Series([7] * self.len()))
    rows = [good_record(test_id=f"T{i}") for i in range(5)] + [good_record(test_id="T2")]
    assert reasons(*rows) == ["test_id:unique"]


def test_coded_output_gives_each_categorical_field_its_row_in_the_code_table():
    frame = pl.DataFrame([good_record()], schema=dict.fromkeys(good_record(), pl.String))
    valid = validate_frame(frame, "test_records", today=TODAY, coded=True).valid
    for f in load_schema("test_records").fields:
        table = code_table(f)
        if table is not None:
            assert table.values[valid[f.name][0]] == good_record()[f.name], f.name
    assert valid["person_id"].to_list() == ["P1"]  # other fields stay as they are
