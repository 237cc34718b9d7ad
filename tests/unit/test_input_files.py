"""Reading inputs: every fault named by file, line (or row group) and column, never by a
value; every input accounted for (case of suffix, skipped files, duplicate header names,
blank lines, empty files, trimmed ids, distinct quarantine names)."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lds_dask.contract import csv_faults
from lds_dask.contract.csv_faults import locate_csv_fault
from lds_dask.contract.io import find_input_files, read_table_file, source_names
from lds_dask.contract.schemas import SchemaError, load_schema
from lds_dask.contract.validation import validate_frame
from tests.unit.test_schemas import TODAY, good_record

MARKER = "PERSONALMARKER"
SCHEMA = load_schema("test_records")
HEADER = ",".join(good_record())


def record_lines(n: int = 5) -> list[str]:
    """Data lines of valid records whose person_id holds a marker."""
    rows = [good_record(test_id=f"T{i}", person_id=f"{MARKER}{i:04d}") for i in range(n)]
    return [",".join(row.values()) for row in rows]


def with_line(i: int, edit) -> bytes:
    """A CSV whose data line ``i`` (0-based) is replaced by ``edit(line)``."""
    lines = record_lines()
    lines[i] = edit(lines[i])
    return ("\n".join([HEADER, *lines]) + "\n").encode("utf-8", "surrogateescape")


def read_error(path) -> str:
    with pytest.raises(SchemaError) as caught:
        read_table_file(path, SCHEMA)
    text = str(caught.value)
    assert MARKER not in text and "\n" not in text and text.startswith(f"{path}: ")
    return text[len(f"{path}: ") :]


def set_person(value: str):
    return lambda line: line.replace(f"{MARKER}0002", value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            with_line(2, set_person(f'"{MARKER}0002')),
            "line 4, column person_id: a quoted field is never closed",
        ),
        (
            with_line(2, set_person(f'"{MARKER}"0002')),
            "line 4, column person_id: text after a closing quote",
        ),
        (
            with_line(2, set_person(f'{MARKER}"0002')),
            "line 4, column person_id: a quote inside an unquoted field",
        ),
        (
            with_line(2, lambda line: line + f",{MARKER}X"),
            "line 4, field 13 (after the last column, is_symptomatic): 13 fields where the "
            "header has 12",
        ),
        (
            with_line(3, lambda line: line.replace(f"{MARKER}0003", f"{MARKER}0003\udce9")),
            "line 5, column person_id: bytes that are not valid UTF-8",
        ),
        (
            with_line(1, lambda line: line.replace("WHITE", "WHIT\udcff\udcfe")),
            "line 3, column ethnicity: bytes that are not valid UTF-8",
        ),
    ],
    ids=["unclosed", "after-quote", "quote-in-field", "extra-fields", "latin-1", "bad-utf8"],
)
def test_a_malformed_csv_is_named_by_line_and_column(tmp_path, data, expected):
    path = tmp_path / "extract.csv"
    path.write_bytes(data)
    assert read_error(path).startswith(f"cannot read as csv: {expected}")


def test_a_quoted_line_break_counts_in_the_line_numbers(tmp_path):
    path = tmp_path / "wrapped.csv"
    path.write_text(f'{HEADER}\nT0,"{MARKER}\nwrapped",x\nT1,"{MARKER}1,2020\n')
    fault = locate_csv_fault(path, 12)
    assert (fault.line, fault.field) == (4, 1)


def test_a_header_that_is_not_utf8_is_line_1(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(HEADER.replace("age", "\xe2ge").encode("latin-1") + b"\n")
    assert read_error(path) == "cannot read as csv: line 1 (the header): bytes that are not " + (
        "valid UTF-8 (save the file as UTF-8)"
    )


def test_a_repeated_header_name_is_an_error(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("\n".join([HEADER + ",age", *(x + ",41" for x in record_lines())]) + "\n")
    assert read_error(path).startswith("column(s) age named more than once (columns 9, 13)")
    # a file whose "header" is a record: repeated values are told by position only
    other = tmp_path / "noheader.csv"
    other.write_text(f"{HEADER},{MARKER},{MARKER}\n" + "\n".join(record_lines()) + "\n")
    assert read_error(other).startswith("a column name named more than once (columns 13, 14)")


def frame(n: int = 3000) -> pl.DataFrame:
    rows = [good_record(test_id=f"T{i}", person_id=f"{MARKER}{i:04d}") for i in range(n)]
    return pl.DataFrame(rows, schema=dict.fromkeys(good_record(), pl.String))


def test_a_parquet_column_of_the_wrong_type_is_named(tmp_path):
    path = tmp_path / "types.parquet"
    frame().with_columns(pl.col("age").cast(pl.Int64) * 1.5).write_parquet(path)
    assert read_error(path) == (
        "column age is stored as Float64 (every row group), schema test_records wants int16"
    )


def test_a_corrupt_parquet_row_group_is_named_with_its_column(tmp_path):
    clean = tmp_path / "clean.parquet"
    pq.write_table(frame().to_arrow(), clean, row_group_size=1000, compression="none")
    column = pq.ParquetFile(clean).metadata.row_group(1).column(1)  # person_id, rows 1001-2000
    data = bytearray(clean.read_bytes())
    start = column.data_page_offset + 20
    data[start : start + 200] = b"\xff" * 200
    (tmp_path / "corrupt.parquet").write_bytes(bytes(data))
    assert read_error(tmp_path / "corrupt.parquet") == (
        "cannot read as parquet: row group 2 of 3 (rows 1,001-2,000), column person_id: "
        "cannot be decoded (corrupt or truncated data)"
    )
    (tmp_path / "cut.parquet").write_bytes(clean.read_bytes()[:5000])
    assert read_error(tmp_path / "cut.parquet") == "cannot read as parquet: no readable footer"


def test_a_repeated_parquet_column_is_an_error(tmp_path):
    table = frame(5).to_arrow()
    path = tmp_path / "d.parquet"
    pq.write_table(
        pa.table([*table.columns, table["age"]], names=[*table.column_names, "age"]), path
    )
    assert read_error(path).startswith("column(s) age named more than once (columns 9, 13)")


def test_empty_inputs_are_zero_rows(tmp_path):
    (tmp_path / "header.csv").write_text(HEADER + "\n")
    frame(0).write_parquet(tmp_path / "none.parquet")
    for name in ("header.csv", "none.parquet"):
        df = read_table_file(tmp_path / name, SCHEMA)
        assert df.height == 0 and df.columns == SCHEMA.columns


def test_blank_lines_are_not_rows_and_rows_keep_their_number(tmp_path):
    lines = record_lines()
    text = "\n".join([HEADER, lines[0], "", "   ", ",,,,,,,,,,,", *lines[1:], "", ""]) + "\n"
    (tmp_path / "b.csv").write_text(text)
    df = read_table_file(tmp_path / "b.csv", SCHEMA, row_index="source_row")
    assert df["person_id"].to_list() == [f"{MARKER}{i:04d}" for i in range(5)]
    assert df["source_row"].to_list() == [1, 5, 6, 7, 8]


def test_ids_are_trimmed_like_every_other_field():
    rows = [
        good_record(test_id=" T1", person_id="P1 "),
        good_record(test_id="T1", person_id=" P1"),
        good_record(test_id="T2\t", specimen_date=" 2020-10-02 ", age=" 40"),
        good_record(test_id="T3", sex=" F"),  # a categorical value must match exactly
    ]
    result = validate_frame(pl.DataFrame(rows), "test_records", today=TODAY)
    assert result.valid["test_id"].to_list() == ["T1", "T2"]
    assert result.valid["person_id"].to_list() == ["P1", "P1"]
    assert result.rejected["reason"].to_list() == ["test_id:unique", "sex:enum"]
    assert result.rejected["test_id"].to_list() == ["T1", "T3"]  # quarantined as given


def test_suffixes_are_read_in_any_case_and_other_files_are_listed(tmp_path):
    frame(2).write_csv(tmp_path / "a.CSV")
    frame(2).write_parquet(tmp_path / "b.PARQUET")
    (tmp_path / "notes.txt").write_text("not data")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.csv.bak").write_text("old")
    found = find_input_files([tmp_path])
    assert [p.name for p in found.files] == ["a.CSV", "b.PARQUET"]
    assert found.skipped_lines() == [
        f"{tmp_path / 'notes.txt'}: skipped (not a .csv or .parquet file)",
        f"{tmp_path / 'sub' / 'c.csv.bak'}: skipped (not a .csv or .parquet file)",
    ]
    assert read_table_file(found.files[1], SCHEMA).height == 2


def test_source_names_are_distinct(tmp_path):
    paths = [tmp_path / n for n in ("a.csv", "a.parquet", "x/part-000.csv", "y/part-000.csv")]
    assert source_names(paths) == ["a", "a-1", "x__part-000", "y__part-000"]
    assert source_names([tmp_path / "x" / "a.csv", tmp_path / "x" / "a.parquet"]) == ["a", "a-1"]


@pytest.mark.parametrize(
    ("data", "line", "field"),
    [
        (b"a,b,c\n1,2,3\n\xff1,2,3\n", 3, 0),  # first byte of a line
        (b"a,b,c\n1,2,3\n1,2,\xff\n", 3, 2),
        (b'a,b,c\n1,"x,y",\xff\n', 2, 2),  # after a quoted separator
        (b'a,b,c\n1,"x\n\xffy",3\n', 3, 1),  # inside a value spanning lines
        (b"a,b,c\n1,2,3\xff", 2, 2),  # the last byte, no line end
    ],
)
def test_a_byte_that_is_not_utf8_is_found_by_line_and_field(tmp_path, data, line, field):
    (tmp_path / "x.csv").write_bytes(data)
    fault = locate_csv_fault(tmp_path / "x.csv", 3)
    assert (fault.line, fault.field) == (line, field)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_the_first_bad_byte_is_found_across_chunk_edges(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(csv_faults, "CHUNK_BYTES", chunk)
    good = "a,b\nx,é€😀\n".encode()  # 2-, 3- and 4-byte characters
    (tmp_path / "ok.csv").write_bytes(good)
    assert csv_faults.first_bad_byte(tmp_path / "ok.csv") is None
    for bad in (good + b"\xff", good[:-3] + b"\xe2\x82", b"\xc3" + good):
        (tmp_path / "bad.csv").write_bytes(bad)
        with pytest.raises(UnicodeDecodeError) as caught:
            bad.decode("utf-8")
        assert csv_faults.first_bad_byte(tmp_path / "bad.csv") == caught.value.start
