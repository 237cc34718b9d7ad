"""``lds-dask export`` on a small contract cube: files, read-back, checksums, ACRO evidence.

acro 1.0.2 pins pandas<=2.3.3 and this project needs pandas 3, so acro runs in a venv of its
own (tests/acro_env.py, built on first use and cached). ``assert_acro_format`` checks
results.json against ACRO's schema as written by ``acro.record.Records.finalise_json``,
then has ACRO's own ``acro.record.load_records`` read the folder in that venv.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import polars as pl
import pytest
import xarray as xr
from click.testing import CliRunner

from lds_dask.cli.export import command as export_command
from lds_dask.cube.build import open_cube
from lds_dask.cube.write import quiet_zarr
from lds_dask.outputs import export as export_mod
from lds_dask.outputs.export import COLUMNS, export_cube
from lds_dask.sdc.rules import STATUS_NAMES, DisclosureRules, safe_view
from tests.acro_env import assert_acro_loads, run_acro_check

CODES = ["E07000008", "E07000009", "E07000010", "E10000003", "E12000006", "E92000001"]
KINDS = ["ltla", "ltla", "ltla", "utla", "region", "country"]
SEXES = ["F", "M", "U"]
# LTLA x week x sex people_positive; the region, county and England rows are sums
POSITIVE = np.array(
    [
        [[40, 7, 12], [60, 55, 12], [40, 50, 0]],
        [[35, 30, 11], [0, 3, 20], [35, 30, 60]],
        [[50, 45, 13], [70, 65, 0], [50, 45, 70]],
    ]
)


def make_tree() -> xr.DataTree:
    ltla = POSITIVE
    total_rows = ltla.sum(axis=0, keepdims=True)
    pos = np.concatenate([ltla, total_rows, total_rows, total_rows]).astype(np.int64)
    tested = pos * 4 + 20
    coords = {
        "area": CODES,
        "week": pd.date_range("2021-01-04", periods=3, freq="7D").values,
        "area_name": (
            "area",
            [
                "Cambridge",
                "East Cambridgeshire",
                "Fenland",
                "Cambridgeshire",
                "East of England",
                "England",
            ],
        ),
        "area_type": ("area", KINDS),
        "region_code": ("area", ["E12000006"] * 5 + [""]),
        "utla_code": ("area", ["E10000003"] * 4 + [""] * 2),
    }

    def node(p, t, dims, extra):
        sig = np.where(p > 30, "higher", "similar")
        return xr.Dataset(
            {
                "people_positive": (dims, p),
                "people_tested": (dims, t),
                "tests": (dims, t + 5),
                "population": (dims, np.full(p.shape, 1e4)),
                "positivity_pct": (dims, 100 * p / t),
                "sig_vs_england": (dims, sig),
            },
            coords={**coords, **extra},
        )

    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs={"store_manifest_sha256": "abc123", "title": "test cube"}),
            "/total": node(pos.sum(-1), tested.sum(-1), ("area", "week"), {}),
            "/sex": node(pos, tested, ("area", "week", "sex"), {"sex": SEXES}),
        }
    )


@pytest.fixture(scope="module")
def cube_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cube") / "cube.zarr"
    with quiet_zarr():
        make_tree().to_zarr(path)
    return path


def run_export(cube: Path, out: Path, *args: str):
    result = CliRunner().invoke(export_command, ["--cube", str(cube), "--out", str(out), *args])
    return result


def read_csv(path: Path) -> pl.DataFrame:
    """A table as text, empty cells as "" (what a reader sees in a spreadsheet)."""
    return pl.read_csv(path, infer_schema=False).with_columns(pl.all().fill_null(""))


def counts(frame: pl.DataFrame, measure: str = "people_positive") -> pl.DataFrame:
    return frame.filter(pl.col("measure") == measure)


def assert_acro_format(directory: Path) -> None:
    """results.json has exactly the fields acro 1.0.2 writes and load_records reads."""
    doc = json.loads((directory / "results.json").read_text())
    assert set(doc) == {"version", "tool", "results"} and doc["version"] == "1.0.2"
    assert doc["tool"]["name"] == "ACRO"
    for name, rec in doc["results"].items():
        assert set(rec) == {
            "uid",
            "status",
            "type",
            "properties",
            "files",
            "outcome",
            "command",
            "summary",
            "timestamp",
            "comments",
            "exception",
            "fair",
        }
        assert rec["uid"] == name and rec["status"] in ("pass", "fail", "review")
        assert rec["files"] and all(set(f) == {"name", "sdc"} for f in rec["files"])
        for f in rec["files"]:
            assert (directory / f["name"]).is_file()
            assert set(f["sdc"]) == {"summary", "cells"}
        assert isinstance(rec["comments"], list) and isinstance(rec["exception"], str)
        table = read_csv(directory / f"{name}.csv")
        outcome = pd.DataFrame.from_dict(rec["outcome"])  # what acro's load_outcome does
        assert outcome["value"].tolist() == table["status"].to_list()
        cells = rec["files"][0]["sdc"]["cells"]["MinimumThresholdCheck"]
        primary = table.with_row_index().filter(pl.col("status") == "suppressed_primary")
        assert [r for r, _ in cells] == primary["index"].to_list()
    named = {name: [f["name"] for f in rec["files"]] for name, rec in doc["results"].items()}
    assert assert_acro_loads(directory) == named


def test_export_writes_every_file_and_they_read_back(cube_path, tmp_path):
    out = tmp_path / "out"
    result = run_export(cube_path, out, "--format", "csv,parquet,xlsx")
    assert result.exit_code == 0, result.output
    printed = set(result.output.split())
    for name in (
        "total.csv",
        "sex.csv",
        "total.parquet",
        "sex.parquet",
        "tables.xlsx",
        "results.json",
        "manifest.json",
        "checksums/total.csv.sha256",
    ):
        assert str(out / name) in printed
    for name in ("total", "sex"):
        frame = read_csv(out / f"{name}.csv")
        assert tuple(frame.columns) == COLUMNS
        assert set(frame["status"]) <= set(STATUS_NAMES)
        hidden = frame["status"].str.starts_with("suppressed")
        assert (frame.filter(hidden)["value"] == "").all()
        assert (
            frame.filter(~hidden & (frame["value"] != ""))["status"].is_in(["ok", "rounded"]).all()
        )
        parquet = pl.read_parquet(out / f"{name}.parquet").with_columns(
            pl.col("value").fill_null("")
        )
        assert parquet.equals(frame)
    sex = read_csv(out / "sex.csv")
    assert counts(sex)["status"].to_list().count("suppressed_secondary") > 0
    cell = counts(sex).filter(
        (pl.col("area_code") == "E07000008")
        & (pl.col("category") == "M")
        & (pl.col("week") == "2021-01-04")
    )
    assert cell["value"].to_list() == [""] and cell["status"].to_list() == ["suppressed_primary"]
    book = openpyxl.load_workbook(out / "tables.xlsx", read_only=True)
    assert book.sheetnames == ["total", "sex"]
    rows = list(book["sex"].iter_rows(values_only=True))
    assert rows[0] == COLUMNS and len(rows) == sex.height + 1
    assert_acro_format(out)


def test_checksums_and_manifest_tie_the_files_to_the_cube(cube_path, tmp_path):
    out = export_cube(cube_path, tmp_path / "out", DisclosureRules(), ("csv",))
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    assert sorted(p.name for p in (out / "checksums").iterdir()) == [f + ".sha256" for f in files]
    for name in files:
        digest, listed = (out / "checksums" / f"{name}.sha256").read_text().split()
        assert listed == name and digest == hashlib.sha256((out / name).read_bytes()).hexdigest()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cube"]["attrs"]["store_manifest_sha256"] == "abc123"
    assert manifest["cube"]["source"] == str(cube_path.resolve())
    assert manifest["disclosure_rules"] == {"threshold": 10, "suppress_zeros": True, "rounding": 0}
    sex = read_csv(out / "sex.csv")
    by_status = sex.group_by("status").len()
    assert manifest["tables"]["sex"]["cells_by_status"] == {
        s: int(by_status.filter(pl.col("status") == s)["len"].sum()) for s in STATUS_NAMES
    }
    assert manifest["tables"]["sex"]["rows"] == sex.height


def test_threshold_option_publishes_counts_at_or_above_it(cube_path, tmp_path):
    for threshold in ("10", "5"):
        assert run_export(cube_path, tmp_path / threshold, "--threshold", threshold).exit_code == 0
    strict, loose = (counts(read_csv(tmp_path / t / "sex.csv")) for t in ("10", "5"))
    for frame, limit in ((strict, 10), (loose, 5)):
        shown = frame.filter(pl.col("value") != "")["value"].cast(pl.Int64)
        assert shown.min() >= limit
    assert "7" in loose["value"].to_list() and "7" not in strict["value"].to_list()
    assert (loose["status"] != "ok").sum() < (strict["status"] != "ok").sum()


def test_zeros_option_decides_whether_zeros_are_suppressed(cube_path, tmp_path):
    assert run_export(cube_path, tmp_path / "z", "--zeros-disclosive").exit_code == 0
    assert run_export(cube_path, tmp_path / "nz", "--no-zeros-disclosive").exit_code == 0
    zeros = counts(read_csv(tmp_path / "z" / "sex.csv"))
    shown = counts(read_csv(tmp_path / "nz" / "sex.csv"))
    assert "0" not in zeros["value"].to_list()
    assert "0" in shown["value"].to_list()


def test_rounding_option_rounds_every_published_count(cube_path, tmp_path):
    assert run_export(cube_path, tmp_path / "r", "--rounding", "5").exit_code == 0
    frame = counts(read_csv(tmp_path / "r" / "total.csv"))
    shown = frame.filter(pl.col("value") != "")
    assert (shown["value"].cast(pl.Int64) % 5 == 0).all() and (shown["status"] == "rounded").all()
    raw = make_tree()["/total"]["people_positive"].values
    assert not (raw % 5 == 0).all()  # so the rounding really changed something
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert (
        manifest["disclosure_rules"]["rounding"] == 5 and "may not sum" in manifest["rounding_note"]
    )


def test_bad_input_is_a_one_line_error_with_exit_2(cube_path, tmp_path):
    (tmp_path / "exists").mkdir()
    for args in (
        ["--cube", str(tmp_path / "missing.zarr"), "--out", str(tmp_path / "o")],
        ["--cube", str(cube_path), "--out", str(tmp_path / "exists")],
        ["--cube", str(cube_path), "--out", str(tmp_path / "o"), "--format", "pdf"],
        ["--cube", str(cube_path), "--out", str(tmp_path / "o"), "--threshold", "0"],
    ):
        result = CliRunner().invoke(export_command, args)
        assert result.exit_code == 2 and result.output.startswith("error: "), result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_an_interrupted_export_leaves_nothing_that_looks_valid(cube_path, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_mod, "write_manifest", fail)
    with pytest.raises(KeyboardInterrupt):
        export_cube(cube_path, tmp_path / "out", DisclosureRules(), ("csv",))
    assert list(tmp_path.iterdir()) == []


def test_safe_view_of_the_lazily_opened_cube_equals_that_of_the_loaded_cube(cube_path):
    rules = DisclosureRules(suppress_zeros=False)
    loaded = safe_view(open_cube(cube_path).load(), rules)
    dask_backed = open_cube(cube_path).chunk({"area": 2})
    for lazy in (open_cube(cube_path), dask_backed):  # lazily indexed, dask
        safe = safe_view(lazy, rules)
        for path in ("/total", "/sex"):
            assert safe[path].to_dataset().identical(loaded[path].to_dataset())
    assert dask_backed["/sex"]["people_positive"].chunks is not None  # caller's cube untouched


def file_hashes(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.rglob("*")
        if p.is_file()
    }


def test_two_exports_of_the_same_cube_differ_only_in_documented_fields(cube_path, tmp_path):
    formats = ("csv", "parquet")
    runs = [
        export_cube(cube_path, tmp_path / f"run{i}", DisclosureRules(), formats) for i in (1, 2)
    ]
    first, second = (file_hashes(r) for r in runs)
    varying = {"manifest.json", "results.json"}
    varying |= {f"checksums/{f}.sha256" for f in varying}
    assert set(first) == set(second)
    assert {k: v for k, v in first.items() if k not in varying} == {
        k: v for k, v in second.items() if k not in varying
    }
    docs = [json.loads((r / "results.json").read_text()) for r in runs]
    for doc in docs:
        for record in doc["results"].values():
            record.pop("timestamp")
    assert docs[0] == docs[1]  # results.json: only the ACRO timestamps vary
    manifests = [json.loads((r / "manifest.json").read_text()) for r in runs]
    for manifest in manifests:
        manifest.pop("created")
        manifest["files"] = [f for f in manifest["files"] if f["name"] != "results.json"]
    assert manifests[0] == manifests[1]  # manifest: the time, and results.json's hash


def test_source_date_epoch_fixes_the_export_time(cube_path, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    runs = [export_cube(cube_path, tmp_path / f"run{i}", DisclosureRules()) for i in (1, 2)]
    assert file_hashes(runs[0]) == file_hashes(runs[1])
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["created"] == "2023-11-14T22:13:20+00:00"


def test_the_acro_check_fails_on_what_acro_would_refuse(cube_path, tmp_path):
    """ACRO's check is no formality: a named file missing, another ACRO version, or an
    output for review without an exception each fail it, and it says which."""
    good = export_cube(cube_path, tmp_path / "good", DisclosureRules(), ("csv",))
    doc = json.loads((good / "results.json").read_text())
    assert set(assert_acro_loads(good)) == set(doc["results"])
    uid, rec = next((u, r) for u, r in doc["results"].items() if r["status"] == "review")
    missing = rec["files"][0]["name"]

    def broken(name: str, results: dict) -> str:
        out = tmp_path / name
        shutil.copytree(good, out)
        (out / "results.json").write_text(json.dumps(results))
        if name == "missing":
            (out / missing).unlink()
        done = run_acro_check(out)
        assert done.returncode == 1, done.stdout
        return done.stderr

    assert f"{uid}: names {missing}, which does not exist" in broken("missing", doc)
    old = {**doc, "version": "1.0.1"}
    assert "load_records raised ValueError" in broken("version", old)
    silent = json.loads(json.dumps(doc))
    silent["results"][uid]["exception"] = ""
    assert "validate_outputs asked for an exception" in broken("exception", silent)
