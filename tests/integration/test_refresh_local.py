"""End-to-end refresh on the embedded LocalCluster: run manifest, stage skipping, and an
incremental refresh after one new week that equals a fresh run over all weeks."""

from __future__ import annotations

import json

from lds_dask.io import file_sha256
from lds_dask.refresh import LATEST_FILE, STATE_DIR
from tests.faults.refresh_helpers import (
    assert_same_cube,
    export_hashes,
    reference_run,
    refresh,
    spec_text,
    synth_inputs,
    week_dirs,
    write_spec,
)

ALL_STAGES = ["synth", "ingest", "cube", "disclosure", "export", "plots", "report"]


def test_run_manifest_records_hashes_config_rows_timings_outputs(tmp_path_factory):
    root = reference_run(tmp_path_factory)
    m = json.loads((root / LATEST_FILE).read_text())
    assert m["status"] == "completed" and m["error"] is None
    assert json.loads((root / STATE_DIR / f"{m['run_id']}.json").read_text()) == m
    assert list(m["stages"]) == [s for s in ALL_STAGES if s in m["stages"]]
    assert {"synth", "ingest", "cube", "disclosure", "export", "report"} <= set(m["stages"])
    assert all(s["status"] == "ran" and s["seconds"] >= 0 for s in m["stages"].values())
    assert m["lds_dask_version"] and m["config"]["disclosure"]["threshold"] == 10
    hashes = m["input_hashes"]
    assert len(hashes) > 10 and all(file_sha256(p) == h for p, h in hashes.items())
    st = m["stages"]
    # rows reconcile: generated = ingested in; stored records = England's tests in the cube
    assert st["synth"]["rows_out"] == st["ingest"]["rows_in"]
    assert (
        st["ingest"]["rows_out"] + st["ingest"]["details"]["rows_quarantined"]
        == st["ingest"]["rows_in"]
    )
    assert st["cube"]["rows_in"] == st["cube"]["rows_out"] > 0
    assert st["disclosure"]["rows_in"] > st["disclosure"]["rows_out"] > 0
    assert all(p and __import__("pathlib").Path(p).exists() for p in m["outputs"].values())
    assert (root / "report" / "index.html").is_file()


def test_unchanged_rerun_skips_every_stage(tmp_path_factory):
    root = reference_run(tmp_path_factory)
    before = export_hashes(root)
    m = refresh(root.parent / "job.toml")
    assert {n: s["status"] for n, s in m["stages"].items()} == dict.fromkeys(m["stages"], "skipped")
    assert export_hashes(root) == before


def test_new_week_reruns_only_what_depends_on_it(tmp_path_factory, tmp_path):
    reference = reference_run(tmp_path_factory)
    synth = synth_inputs(tmp_path_factory)
    spec = tmp_path / "job.toml"
    first = refresh(write_spec(spec, spec_text(synth, tmp_path / "out", weeks=4, report=False)))
    assert first["stages"]["ingest"]["status"] == "ran"

    second = refresh(write_spec(spec, spec_text(synth, tmp_path / "out", report=False)))
    new_rows = second["stages"]["ingest"]["rows_in"]
    assert 0 < new_rows < first["stages"]["ingest"]["rows_in"]  # only the new week was read
    assert {n: s["status"] for n, s in second["stages"].items()} == dict.fromkeys(
        ["ingest", "cube", "disclosure", "export"], "ran"
    )
    assert_same_cube(tmp_path / "out" / "cube.zarr", reference / "cube.zarr")
    assert export_hashes(tmp_path / "out") == export_hashes(reference)

    third = refresh(write_spec(spec, spec_text(synth, tmp_path / "out", report=False, threshold=5)))
    assert {n: s["status"] for n, s in third["stages"].items()} == {
        "ingest": "skipped",
        "cube": "skipped",
        "disclosure": "ran",
        "export": "ran",
    }
    assert len(week_dirs(synth)) == 5
