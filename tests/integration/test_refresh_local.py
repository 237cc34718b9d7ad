"""End-to-end refresh on a LocalCluster: the run manifest, stage skipping, and an
incremental refresh after one new week that equals a fresh run over all weeks."""

from __future__ import annotations

import json
from pathlib import Path

from lds_dask.refresh.run import LATEST_FILE, STATE_DIR, hash_tree
from lds_dask.runtime.hashing import file_sha256
from lds_dask.runtime.publish import MARKER, marker_kind
from tests.faults.refresh_helpers import (
    PLOT_LAS,
    REPORT_LAS,
    WEEKS,
    assert_same_cube,
    assert_same_export,
    refresh,
    spec_text,
    week_dirs,
    write_spec,
)

ALL_STAGES = ["synth", "ingest", "cube", "disclosure", "export", "plots", "report"]


def statuses(manifest: dict) -> dict[str, str]:
    return {name: st["status"] for name, st in manifest["stages"].items()}


def test_run_manifest_records_hashes_config_rows_timings_outputs(reference):
    m = json.loads((reference / LATEST_FILE).read_text())
    assert m["status"] == "completed" and m["error"] is None
    assert json.loads((reference / STATE_DIR / f"{m['run_id']}.json").read_text()) == m
    assert list(m["stages"]) == ALL_STAGES  # in the order they ran
    assert all(s["status"] == "ran" and s["seconds"] > 0 for s in m["stages"].values())
    assert m["seconds"] >= sum(s["seconds"] for s in m["stages"].values())
    assert m["lds_dask_version"] and m["config"]["disclosure"]["threshold"] == 10
    assert m["spec"]["sha256"] == file_sha256(reference.parent / "job.toml")
    assert m["cluster"].endswith("(2 workers)")
    hashes = m["input_hashes"]
    assert len(hashes) > 10 and all(file_sha256(p) == h for p, h in hashes.items())
    st = m["stages"]
    # rows reconcile: generated = ingested in = stored + quarantined; stored test records =
    # England's tests in the cube
    assert st["synth"]["rows_out"] == st["ingest"]["rows_in"]
    ingest = st["ingest"]
    assert ingest["rows_out"] + ingest["details"]["rows_quarantined"] == ingest["rows_in"]
    assert ingest["details"]["rows_quarantined"] > 0  # the dirty rows were caught
    assert st["cube"]["rows_in"] == st["cube"]["rows_out"] > 0
    assert st["disclosure"]["rows_in"] > st["disclosure"]["rows_out"] > 0
    assert st["plots"]["rows_in"] == len(PLOT_LAS) and st["plots"]["rows_out"] > 0
    assert st["report"]["rows_out"] == len(REPORT_LAS)
    assert all(Path(p).exists() for p in m["outputs"].values())
    assert {f"{la}.html" for la in REPORT_LAS} | {"index.html"} <= {
        p.name for p in (reference / "report").iterdir()
    }
    plots = [p for p in (reference / "plots").iterdir() if p.name != MARKER]
    assert plots and all(p.name.startswith(PLOT_LAS) for p in plots)
    kinds = {"cube.zarr": "cube", "export": "export", "plots": "plots", "report": "report"}
    assert all(marker_kind(reference / name) == kind for name, kind in kinds.items())


def test_unchanged_rerun_skips_every_stage_and_starts_no_cluster(reference, tmp_path):
    state = (reference / STATE_DIR / "state.json").read_text()
    before = hash_tree(reference)
    m = refresh(reference.parent / "job.toml")  # no client given: would start a LocalCluster
    assert statuses(m) == dict.fromkeys(ALL_STAGES, "skipped")
    assert m["cluster"] is None  # every stage was current, so none was started
    after = hash_tree(reference)
    # only the run records changed: the new run's own manifest and the latest-run pointer
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {LATEST_FILE, f"{STATE_DIR}/{m['run_id']}.json"}
    assert (reference / STATE_DIR / "state.json").read_text() == state


def test_new_week_reruns_only_what_depends_on_it(reference, synth, local_client, tmp_path):
    out, spec = tmp_path / "out", tmp_path / "job.toml"
    first = refresh(
        write_spec(spec, spec_text(synth, out, weeks=WEEKS - 1, export=False)), local_client
    )
    assert statuses(first) == {"ingest": "ran", "cube": "ran"}

    second = refresh(write_spec(spec, spec_text(synth, out)), local_client)
    new_rows = second["stages"]["ingest"]["rows_in"]
    last_week = str(week_dirs(synth)[-1])
    assert not [f for f in first["input_hashes"] if f.startswith(last_week)]  # not seen yet
    assert 0 < new_rows < first["stages"]["ingest"]["rows_in"]  # only the new week was read
    assert statuses(second) == dict.fromkeys(["ingest", "cube", "disclosure", "export"], "ran")
    assert_same_cube(out / "cube.zarr", reference / "cube.zarr")
    assert_same_export(out, reference)

    third = refresh(write_spec(spec, spec_text(synth, out, threshold=5)), local_client)
    assert statuses(third) == {
        "ingest": "skipped",
        "cube": "skipped",
        "disclosure": "ran",
        "export": "ran",
    }
    published = json.loads((out / "export" / "manifest.json").read_text())
    assert published["disclosure_rules"]["threshold"] == 5
