"""Spec tests: every validator reason reaches quarantine; duplicates; reconciliation; errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from test_ingest_fixtures import make_records, write

from lds_dask.cli import main
from lds_dask.contract.schemas import SchemaError
from lds_dask.ingest.run import RejectRateError, ingest
from lds_dask.runtime.errors import ExitCode
from lds_dask.store.layout import StoreError, read_manifest

VALID = {
    "test_id": "ok",
    "person_id": "p1",
    "specimen_date": "2021-02-01",
    "result": "POSITIVE",
    "test_type": "PCR",
    "pillar": "2",
    "lsoa11_code": "E01011949",
    "la_code": "E06000001",
    "age": "34",
    "sex": "F",
    "ethnicity": "WHITE",
    "is_symptomatic": "true",
}

# reason code -> the change that makes a valid row fail exactly that rule
BAD = [
    ("test_id:not_null", {"test_id": ""}),
    ("person_id:not_null", {"person_id": ""}),
    ("specimen_date:dtype", {"specimen_date": "01/02/2021"}),
    ("specimen_date:not_null", {"specimen_date": ""}),
    ("specimen_date:min", {"specimen_date": "2019-12-31"}),
    ("specimen_date:max", {"specimen_date": "2999-01-01"}),
    ("result:enum", {"result": "MAYBE"}),
    ("test_type:enum", {"test_type": "SWAB"}),
    ("pillar:dtype", {"pillar": "two"}),
    ("pillar:enum", {"pillar": "3"}),
    ("lsoa11_code:regex", {"lsoa11_code": "W01000001"}),
    ("lsoa11_code:in_refdata", {"lsoa11_code": "E01999999"}),
    ("la_code:regex", {"la_code": "S12000033"}),
    ("la_code:in_refdata", {"la_code": "E06999999"}),
    ("age:dtype", {"age": "forty"}),
    ("age:min", {"age": "-1"}),
    ("age:max", {"age": "130"}),
    ("sex:enum", {"sex": "X"}),
    ("ethnicity:enum", {"ethnicity": "GREEN"}),
    ("is_symptomatic:dtype", {"is_symptomatic": "perhaps"}),
    ("lsoa11_code:lsoa_in_la", {"lsoa11_code": "E01000001"}),  # City of London LSOA
]


def rows_csv(path: Path, rows: list[dict]) -> Path:
    pl.DataFrame(rows, schema={k: pl.String for k in VALID}).write_csv(path)
    return path


def test_every_reason_is_quarantined_with_its_row_number(tmp_path):
    rows = [{**VALID, "test_id": "ok0"}]
    rows += [{**VALID, "test_id": f"bad{i}", **change} for i, (_, change) in enumerate(BAD)]
    rows += [{**VALID, "test_id": "ok0"}]  # a within-file duplicate of row 1
    rows += [{**VALID, "test_id": f"ok{i}"} for i in range(1, 800)]
    src = rows_csv(tmp_path / "x.csv", rows)
    report = ingest([src], tmp_path / "s", progress=False, max_reject_rate=1.0)
    (f,) = report.files
    assert f["reasons"] == {**{r: 1 for r, _ in BAD}, "test_id:unique": 1}
    assert (f["rows_in"], f["rows_stored"], f["rows_quarantined"]) == (len(rows), 800, len(BAD) + 1)
    q = pl.read_parquet(tmp_path / "s" / "quarantine" / report.run_id / "x.parquet")
    assert q["reason"].to_list() == [r for r, _ in BAD] + ["test_id:unique"]
    assert q["source_row"].to_list() == list(range(2, len(BAD) + 3))
    assert set(q["source_file"]) == {str(src.resolve())}
    assert all(q.schema[c] == pl.String for c in VALID)


def test_duplicates_across_files_keep_the_first_in_path_order(tmp_path):
    a = make_records(300, 1)
    b = pl.concat([make_records(200, 2), a.slice(10, 5)])
    moved = a.slice(20, 1).with_columns(la_code=pl.lit("E09000033"), lsoa11_code=pl.lit(None))
    write(b.vstack(moved.select(b.columns)), tmp_path / "in" / "b.parquet")
    write(a, tmp_path / "in" / "a.parquet")  # sorts first, so its copies are kept
    report = ingest([tmp_path / "in"], tmp_path / "s", progress=False)
    assert [f["reasons"] for f in report.files] == [{}, {"test_id:unique": 6}]
    stored = pl.read_parquet(tmp_path / "s" / "records", hive_partitioning=True)
    assert stored.height == 500 and stored["test_id"].is_unique().all()
    assert stored.filter(pl.col("test_id") == a["test_id"][20])["la_code"].to_list() == [
        a["la_code"][20]
    ]


def test_duplicates_of_an_earlier_run_are_quarantined(tmp_path):
    a = make_records(300, 1)
    ingest([write(a, tmp_path / "a.parquet")], tmp_path / "s", progress=False)
    later = pl.concat([make_records(100, 3), a.slice(0, 4)])
    report = ingest([write(later, tmp_path / "b.parquet")], tmp_path / "s", progress=False)
    assert report.files[0]["reasons"] == {"test_id:unique": 4}
    stored = pl.read_parquet(tmp_path / "s" / "records", hive_partitioning=True)
    assert stored.height == 400 and stored["test_id"].is_unique().all()


def test_reject_rate_ceiling_fails_after_the_report_and_commits_nothing(tmp_path):
    ingest([write(make_records(100, 1), tmp_path / "a.parquet")], tmp_path / "s", progress=False)
    before = read_manifest(tmp_path / "s")
    bad = make_records(100, 2).with_columns(
        result=pl.when(pl.int_range(pl.len()) < 10).then(pl.lit("MAYBE")).otherwise("result")
    )
    with pytest.raises(RejectRateError, match=r"10\.00% of rows .* 10 rows failing result:enum"):
        ingest([write(bad, tmp_path / "b.parquet")], tmp_path / "s", progress=False)
    assert read_manifest(tmp_path / "s") == before
    assert not (tmp_path / "s" / "_tmp").exists() or not any((tmp_path / "s" / "_tmp").iterdir())
    assert not (tmp_path / "s" / "quarantine").exists()
    reports = [json.loads(p.read_text()) for p in (tmp_path / "s" / "_runs").glob("*.json")]
    assert sorted(r["status"] for r in reports) == ["committed", "rejected"]


def test_no_personal_value_in_report_or_messages(tmp_path):
    df = make_records(200, 1, prefix="SECRETID")
    df = pl.concat([df, df.head(2)]).with_columns(pl.all().cast(pl.String))
    report = ingest([write(df, tmp_path / "a.csv")], tmp_path / "s", progress=False)
    text = json.dumps(report.to_dict()) + (tmp_path / "s" / "_manifest.json").read_text()
    assert "SECRETID" not in text and "p1" not in text.replace("lsoa", "")


@pytest.mark.parametrize(
    "case, error, match",
    [
        ("missing", SchemaError, "no such file or directory"),
        ("columns", SchemaError, "missing column.*la_code.*test_records"),
        ("version", StoreError, "format_version 99 .* incompatible"),
        ("under_a_file", OSError, "Not a directory"),
    ],
)
def test_user_errors_are_one_line_with_their_exit_code(tmp_path, case, error, match):
    raw = tmp_path / "a.parquet"
    write(make_records(20, 1).drop("la_code") if case == "columns" else make_records(20, 1), raw)
    store = tmp_path / "s"
    if case == "version":
        store.mkdir()
        (store / "_store.json").write_text('{"format_version": 99}')
    if case == "missing":
        raw = tmp_path / "nope.parquet"
    if case == "under_a_file":
        (tmp_path / "file").write_text("a file where the store's parent folder should be")
        store = tmp_path / "file" / "s"
    with pytest.raises(error, match=match):
        ingest([raw], store, progress=False)
    result = CliRunner().invoke(
        main, ["ingest", "--raw", str(raw), "--store", str(store), "--workers", "1"]
    )
    assert result.exit_code == (ExitCode.WRITE_FAILED if case == "under_a_file" else 2)
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    if case == "under_a_file":
        assert f"error: {store}: cannot write (Not a directory)" in result.output


def test_every_input_is_accounted_for(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    rows_csv(data / "a.CSV", [{**VALID, "test_id": f" t{i} "} for i in range(30)])
    rows_csv(data / "b.csv", [{**VALID, "test_id": "t0"}])  # " t0 " trimmed: a duplicate
    (data / "header.csv").write_text(",".join(VALID) + "\n")
    pl.DataFrame(schema=dict.fromkeys(VALID, pl.String)).write_parquet(data / "none.parquet")
    (data / "notes.txt").write_text("not data")
    report = ingest([data], tmp_path / "s", progress=False)
    counts = {Path(f["path"]).name: (f["rows_in"], f["rows_stored"]) for f in report.files}
    assert counts == {
        "a.CSV": (30, 30),
        "b.csv": (1, 0),
        "header.csv": (0, 0),
        "none.parquet": (0, 0),
    }
    assert report.files[1]["reasons"] == {"test_id:unique": 1}
    notes = data.resolve() / "notes.txt"
    assert report.skipped == ({"path": str(notes), "reason": "not a .csv or .parquet file"},)
    assert f"{notes}: skipped (not a .csv or .parquet file)" in report.messages
    assert f"{data.resolve() / 'header.csv'}: 0 rows" in report.messages
    run = json.loads((tmp_path / "s" / "_runs" / f"{report.run_id}.json").read_text())
    assert run["skipped"] == [{"path": str(notes), "reason": "not a .csv or .parquet file"}]
    stored = pl.read_parquet(tmp_path / "s" / "records", hive_partitioning=True)
    assert sorted(stored["test_id"]) == sorted(f"t{i}" for i in range(30))
    assert ingest([data], tmp_path / "s", progress=False).status == "noop"


def test_only_empty_inputs_commit_zero_rows(tmp_path):
    (tmp_path / "header.csv").write_text(",".join(VALID) + "\n")
    report = ingest([tmp_path / "header.csv"], tmp_path / "s", progress=False)
    assert report.status == "committed" and report.totals["rows_in"] == 0
    assert read_manifest(tmp_path / "s")["files"][str(tmp_path / "header.csv")]["rows_in"] == 0
