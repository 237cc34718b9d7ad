"""``lds-dask cube``: one-line errors with exit 2 for user errors."""

from __future__ import annotations

from click.testing import CliRunner

from lds_dask.cli import main


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
