"""``lds-dask cube``: one-line errors with exit 2 for user errors."""

from __future__ import annotations

import datetime as dt

from click.testing import CliRunner

from lds_dask.cli import main
from lds_dask.runtime.errors import ExitCode

HART = "E06000001"


def run(*args):
    return CliRunner().invoke(main, ["cube", *args])


def test_missing_store_is_exit_2(tmp_path):
    result = run("--store", str(tmp_path / "nope"), "--out", str(tmp_path / "c.zarr"))
    assert result.exit_code == 2
    assert "no such store directory" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_not_a_store_is_exit_2(tmp_path):
    result = run("--store", str(tmp_path), "--out", str(tmp_path / "c.zarr"))
    assert result.exit_code == 2 and "not a store" in result.output


def test_bad_scope_is_exit_2(tmp_path):
    result = run("--store", str(tmp_path), "--out", "c.zarr", "--people-scope", "LFD")
    assert result.exit_code == 2


def test_help_lists_options():
    result = run("--help")
    assert result.exit_code == 0 and "--scheduler" in result.output and "--workers" in result.output


def test_output_under_a_file_is_one_line_write_failure(tmp_path):
    from lds_dask.store.handmade import record_frame, write_store

    row = dict(test_id="t1", person_id="p1", specimen_date=dt.date(2020, 10, 5))
    write_store(tmp_path / "store", record_frame([row | {"result": "NEGATIVE", "la_code": HART}]))
    (tmp_path / "file").write_text("a file where the output's parent folder should be")
    out = tmp_path / "file" / "c.zarr"
    result = run("--store", str(tmp_path / "store"), "--out", str(out), "--workers", "1")
    assert result.exit_code == ExitCode.WRITE_FAILED, result.output
    assert f"error: {out}: cannot write (Not a directory)" in result.output
    assert "Traceback" not in result.output
