"""`lds-dask validate`: per-rule summary, exit codes, quarantine, and no personal values shown."""

import polars as pl
import pytest
from click.testing import CliRunner

from lds_dask.cli import main
from lds_dask.runtime.errors import ExitCode
from tests.unit.test_schemas import good_record

PERSONAL_MARKER = "SECRETPERSON"

# One row per rule of test_records, each breaking exactly that rule.
BAD_ROWS = {
    "test_id:not_null": {"test_id": ""},
    "test_id:unique": {"test_id": "T0"},
    "person_id:not_null": {"person_id": ""},
    "specimen_date:dtype": {"specimen_date": "2020-02-30"},
    "specimen_date:min": {"specimen_date": "2019-06-01"},
    "specimen_date:max": {"specimen_date": "2099-01-01"},
    "result:enum": {"result": "MAYBE"},
    "test_type:enum": {"test_type": "PCRX"},
    "pillar:dtype": {"pillar": "one"},
    "pillar:enum": {"pillar": "4"},
    "lsoa11_code:regex": {"lsoa11_code": "X01000001"},
    "lsoa11_code:in_refdata": {"lsoa11_code": "E01999999"},
    "lsoa11_code:lsoa_in_la": {"lsoa11_code": "E01000001", "la_code": "E08000001"},
    "la_code:regex": {"la_code": "S12000033", "lsoa11_code": ""},
    "la_code:in_refdata": {"la_code": "E07000150", "lsoa11_code": ""},
    "la_code:not_null": {"la_code": "", "lsoa11_code": ""},
    "age:dtype": {"age": "4O"},
    "age:min": {"age": "-3"},
    "age:max": {"age": "121"},
    "sex:enum": {"sex": "Q"},
    "sex:not_null": {"sex": ""},
    "ethnicity:enum": {"ethnicity": "NONE"},
    "is_symptomatic:dtype": {"is_symptomatic": "sometimes"},
}


def write_mixed_csv(path, n_good=5):
    rows = [good_record(test_id=f"T{i}", person_id=f"{PERSONAL_MARKER}{i}") for i in range(n_good)]
    rows += [
        good_record(test_id=f"B{i}", person_id=f"{PERSONAL_MARKER}B{i}") | over
        for i, over in enumerate(BAD_ROWS.values())
    ]
    pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String)).write_csv(path)
    return len(rows)


def run(*args):
    return CliRunner().invoke(main, ["validate", *map(str, args)])


def test_every_rule_is_reported_and_exit_is_nonzero(tmp_path):
    write_mixed_csv(tmp_path / "extract.csv")
    result = run(
        tmp_path / "extract.csv", "--table", "test_records", "--quarantine", tmp_path / "q"
    )
    assert result.exit_code == ExitCode.ROWS_REJECTED, result.output
    assert result.output.splitlines()[-1] == "error: test_records: 23 of 28 rows are invalid"
    for rule in BAD_ROWS:
        assert rule in result.output
    assert PERSONAL_MARKER not in result.output
    quarantined = pl.read_parquet(tmp_path / "q" / "extract.rejected.parquet")
    assert sorted(quarantined["reason"]) == sorted(BAD_ROWS)


def test_a_clean_directory_passes(tmp_path):
    rows = [good_record(test_id=f"T{i}") for i in range(3)]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String))
    frame.write_csv(tmp_path / "a.csv")
    frame.with_columns(test_id=pl.col("test_id") + "b").write_csv(tmp_path / "b.csv")
    result = run(tmp_path, "--table", "test_records")
    assert result.exit_code == 0, result.output
    assert "6 rows in 2 file(s), 6 valid, 0 rejected" in result.output.replace("\n", " ")


def write_bad_csv(path):
    header = ",".join(good_record()).encode()
    path.write_bytes(header + b'\n"T1,"P1\n\x00\xff,\n')


def write_empty(path):
    path.write_text("")


def write_missing_column(path):
    pl.DataFrame([good_record()]).drop("sex").write_csv(path)


def write_wrong_types(path):
    frame = pl.DataFrame([good_record()], schema=dict.fromkeys(good_record(), pl.String))
    frame.with_columns(
        pl.col("specimen_date").cast(pl.Float64, strict=False).fill_null(1.5)
    ).write_parquet(path)


def write_not_parquet(path):
    path.write_text("this is not parquet")


@pytest.mark.parametrize(
    ("name", "writer", "message"),
    [
        ("bad.csv", write_bad_csv, "line 2, column test_id: text after a closing quote"),
        ("empty.csv", write_empty, "empty file"),
        ("missing.csv", write_missing_column, "missing column(s) sex"),
        ("types.parquet", write_wrong_types, "specimen_date is stored as Float64"),
        ("broken.parquet", write_not_parquet, "cannot read as parquet"),
    ],
)
def test_malformed_files_give_one_line_error_and_exit_2(tmp_path, name, writer, message):
    writer(tmp_path / name)
    result = run(tmp_path / name, "--table", "test_records")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert str(tmp_path / name) in result.output


def test_missing_path_exit_2(tmp_path):
    result = run(tmp_path / "nope.csv", "--table", "test_records")
    assert result.exit_code == 2 and "no such file" in result.output


def test_help_lists_commands():
    result = CliRunner().invoke(main, ["--help"])
    for name in (
        "demo",
        "refresh",
        "synth",
        "validate",
        "ingest",
        "cube",
        "export",
        "plots",
        "explore",
        "report",
        "bench",
    ):
        assert name in result.output


def test_version_shows_attribution():
    result = CliRunner().invoke(main, ["--version"])
    assert "Open Government Licence v3.0" in result.output


def test_quarantine_files_are_distinct_and_hold_every_reported_row(tmp_path):
    data = tmp_path / "in"
    for sub in ("x", "y"):
        (data / sub).mkdir(parents=True)
        write_mixed_csv(data / sub / "part-000.csv")
    write_mixed_csv(data / "a.csv")
    rows = [good_record(test_id=f"P{i}", age="500") for i in range(7)]
    pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String)).write_parquet(data / "a.parquet")
    (data / "README.txt").write_text("not data")
    result = run(data, "--table", "test_records", "--quarantine", tmp_path / "q")
    assert result.exit_code == ExitCode.ROWS_REJECTED, result.output
    reported = 3 * len(BAD_ROWS) + 7
    assert f"{reported} rejected" in result.output
    assert f"{data / 'README.txt'}: skipped (not a .csv or .parquet file)" in result.output
    written = {p.name: pl.read_parquet(p) for p in (tmp_path / "q").iterdir()}
    assert sorted(written) == [
        "a-1.rejected.parquet",
        "a.rejected.parquet",
        "x__part-000.rejected.parquet",
        "y__part-000.rejected.parquet",
    ]
    assert sum(df.height for df in written.values()) == reported
    assert written["a-1.rejected.parquet"]["source_row"].to_list() == list(range(1, 8))


def test_an_empty_input_is_zero_rows_said_plainly(tmp_path):
    (tmp_path / "h.csv").write_text(",".join(good_record()) + "\n")
    result = run(tmp_path / "h.csv", "--table", "test_records")
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'h.csv'}: 0 rows (the file has its columns but no data)" in result.output
    assert "0 rows in 1 file(s), 0 valid, 0 rejected" in result.output
