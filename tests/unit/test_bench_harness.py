"""The benchmark harness: a tiny end-to-end run, and the derived columns on hand-made rows."""

from __future__ import annotations

import csv
import shutil

import duckdb  # noqa: F401  (the baselines need it: a missing dev extra fails loudly)
import pytest

from bench import harness
from bench.__main__ import parse_options


def test_tiny_run_writes_expected_rows_and_ratios(tmp_path):
    opts = harness.BenchOptions(
        scales=(0.0005,),
        workers=(1,),
        stages=("synth", "ingest"),
        weeks=2,
        work=tmp_path / "work",
        results=tmp_path / "results",
        readme=tmp_path / "README.md",
        plot=False,
        command="test",
    )
    path = harness.run(opts, say=lambda *_: None)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == harness.COLUMNS
    assert [(r["stage"], r["engine"], r["workers"]) for r in rows] == [
        (s, e, "1") for s in ("synth", "ingest") for e in ("lds_dask", "duckdb", "polars")
    ]
    for r in rows:
        assert r["status"] == "ok", r["note"]
        assert int(r["records"]) > 0 and float(r["wall_s"]) > 0 and float(r["peak_rss_gb"]) > 0
        assert int(r["records_per_s"]) > 0
        assert r["faster_baseline"] in ("duckdb", "polars")
        best = min(
            float(x["wall_s"])
            for x in rows
            if x["stage"] == r["stage"] and x["engine"] != "lds_dask"
        )
        assert float(r["ratio_to_faster_baseline"]) == pytest.approx(
            float(r["wall_s"]) / best, rel=1e-2
        )
    assert not (tmp_path / "work" / "scale-0.0005").exists()  # deleted without --keep
    assert "| ingest | lds_dask |" in (tmp_path / "README.md").read_text()


def row(stage, engine, workers, wall, status="ok"):
    r = dict.fromkeys(harness.COLUMNS)
    r.update(
        scale=0.01,
        weeks=52,
        stage=stage,
        engine=engine,
        workers=workers,
        records=1000,
        wall_s=wall,
        status=status,
    )
    return r


def test_ratio_and_speedup_columns():
    rows = harness.add_derived(
        [
            row("cube", "lds_dask", 1, 10.0),
            row("cube", "duckdb", 1, 20.0),
            row("cube", "polars", 1, 5.0),
            row("cube", "lds_dask", 2, 5.0),
            row("cube", "polars", 2, 4.0),
            row("cube", "duckdb", 2, None, status="failed"),
        ]
    )
    lds1, duck1, pol1, lds2, pol2, duck2 = rows
    assert (lds1["faster_baseline"], lds1["ratio_to_faster_baseline"]) == ("polars", 2.0)
    assert duck1["ratio_to_faster_baseline"] == 4.0 and pol1["ratio_to_faster_baseline"] == 1.0
    assert lds2["ratio_to_faster_baseline"] == 1.25  # the failed DuckDB run is ignored
    assert lds1["speedup_1_to_2"] == lds2["speedup_1_to_2"] == 2.0
    assert pol2["speedup_1_to_2"] == 1.25 and duck1["speedup_1_to_2"] is None
    assert lds1["records_per_s"] == 100 and duck2["records_per_s"] is None


def test_rerun_replaces_same_key_and_keeps_others(tmp_path):
    path = tmp_path / "r.csv"
    harness.write_csv(
        path, harness.add_derived([row("cube", "lds_dask", 1, 10.0), row("cube", "polars", 1, 5.0)])
    )
    merged = harness.merge_rows(path, [row("cube", "lds_dask", 1, 4.0)])
    assert [(r["engine"], r["wall_s"]) for r in merged] == [("lds_dask", 4.0), ("polars", 5.0)]


def test_scale_that_does_not_fit_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(1, 1, 2**30))
    opts = harness.BenchOptions(scales=(1.0,), work=tmp_path)
    message = harness.check_disk(1.0, opts)
    assert message and "skipped" in message and "GB" in message


def test_cli_options():
    opts = parse_options(
        [
            "--scale",
            "0.1",
            "--scale",
            "1.0",
            "--workers",
            "2",
            "--stages",
            "ingest,cube",
            "--keep",
            "--no-readme",
        ]
    )
    assert opts.scales == (0.1, 1.0) and opts.workers == (2,)
    assert opts.stages == ("ingest", "cube") and opts.keep and opts.readme is None
    with pytest.raises(ValueError, match="unknown stage"):
        parse_options(["--stages", "synth,bogus"])
