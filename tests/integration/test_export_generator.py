"""``lds-dask export`` on a real cube: generator -> ingest -> build_cube -> export."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
from click.testing import CliRunner

import synthetic_gen
from lds_dask.cli.export import command as export_command
from lds_dask.cube.build import build_cube
from lds_dask.ingest.run import ingest
from lds_dask.outputs.export import COLUMNS
from lds_dask.sdc.rules import COUNT_MEASURES


def test_export_of_a_generator_cube_is_consistent_row_by_row(tmp_path):
    gen = tmp_path / "gen"
    synthetic_gen.generate(
        gen, scale=0.001, seed=5, start=dt.date(2021, 1, 4), weeks=4, progress=False
    )
    ingest(
        [gen / "test_records"],
        tmp_path / "store",
        survey=gen / "survey_responses",
        ahah=gen / "ahah.parquet",
        progress=False,
    )
    cube = build_cube(tmp_path / "store", tmp_path / "cube.zarr", progress=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        export_command, ["--cube", str(cube), "--out", str(out), "--format", "csv,parquet"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"total", "sex", "age_band_sex", "inequality", "lsoa"} <= set(manifest["tables"])
    assert manifest["cube"]["attrs"]["store_manifest_sha256"]
    results = json.loads((out / "results.json").read_text())["results"]
    for name, table in manifest["tables"].items():
        frame = pl.read_parquet(out / f"{name}.parquet")
        assert tuple(frame.columns) == COLUMNS and frame.height == table["rows"]
        hidden = frame["status"].str.starts_with("suppressed")
        assert frame.filter(hidden)["value"].is_null().all()
        shown = frame.filter(~hidden & pl.col("measure").is_in(list(COUNT_MEASURES)))
        values = shown["value"].drop_nulls().cast(pl.Int64)
        assert (values >= 10).all(), f"{name}: a published count under 10"
        assert results[name]["status"] in ("pass", "review")
    total = pl.read_csv(out / "total.csv", infer_schema=False)
    assert total.filter(pl.col("status").str.starts_with("suppressed"))["value"].is_null().all()
    england = total.filter((pl.col("area_code") == "E92000001") & (pl.col("measure") == "tests"))
    assert (england["status"] == "ok").all() and england["value"].cast(pl.Int64).min() >= 10
