"""Incremental, idempotent and atomic ingest; store verification; Dask == in-process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
from test_ingest_fixtures import make_records, make_survey, write  # noqa: E402

from lds_dask.ingest.run import ingest  # noqa: E402
from lds_dask.store import layout as st  # noqa: E402
from lds_dask.store.layout import StoreError, read_manifest, verify_store  # noqa: E402


def snapshot(store: Path) -> dict[str, tuple]:
    """Every file under the store except run-specific ones: (bytes, mtime_ns, inode)."""
    out = {}
    for p in sorted(store.rglob("*")):
        if p.is_file():
            s = p.stat()
            out[str(p.relative_to(store))] = (p.read_bytes(), s.st_mtime_ns, s.st_ino)
    return out


def records(store: Path, sub: str = "records") -> pl.DataFrame:
    return pl.read_parquet(store / sub, hive_partitioning=True).sort(
        "test_id" if sub == "records" else "respondent_id"
    )


def test_reingesting_identical_files_is_a_noop(tmp_path):
    raw = write(make_records(400, 1), tmp_path / "raw" / "a.parquet")
    surv = write(make_survey(50, 1), tmp_path / "sv" / "s.parquet")
    ingest([raw], tmp_path / "s", survey=surv, progress=False)
    before = snapshot(tmp_path / "s")
    again = ingest([raw], tmp_path / "s", survey=surv, progress=False)
    assert again.status == "noop" and any("same sha256; skipped" in m for m in again.messages)
    assert snapshot(tmp_path / "s") == before
    verify_store(tmp_path / "s")


def test_new_file_rewrites_only_the_partitions_that_gained_rows(tmp_path):
    a = write(make_records(600, 1), tmp_path / "raw" / "a.parquet")
    ingest([a], tmp_path / "s", progress=False)
    before = snapshot(tmp_path / "s")
    late = write(make_records(80, 2, las=("E06000001",)), tmp_path / "raw" / "b.parquet")
    report = ingest([a, late], tmp_path / "s", progress=False)
    assert report.partitions_written == ("records/la_code=E06000001",)
    after = snapshot(tmp_path / "s")
    for rel, meta in before.items():
        if rel.startswith("records/") and "E06000001" not in rel:
            assert after[rel] == meta, rel  # same bytes, mtime and inode
    assert (
        after["records/la_code=E06000001/part-0.parquet"]
        != before["records/la_code=E06000001/part-0.parquet"]
    )
    assert records(tmp_path / "s").height == 680
    dates = pl.read_parquet(tmp_path / "s" / "records" / "la_code=E06000001")["specimen_date"]
    assert dates.is_sorted()
    verify_store(tmp_path / "s")


def test_changed_file_replaces_its_rows_without_double_counting(tmp_path):
    path = tmp_path / "raw" / "a.parquet"
    write(make_records(500, 1), path)
    write(make_records(300, 9, prefix="other"), tmp_path / "raw" / "b.parquet")
    ingest([tmp_path / "raw"], tmp_path / "s", progress=False)
    write(make_records(200, 5, las=("E09000033",)), path)  # same path, new content
    report = ingest([tmp_path / "raw"], tmp_path / "s", progress=False)
    assert [f["status"] for f in report.files] == ["changed"]
    stored = records(tmp_path / "s")
    expect = pl.concat(
        [make_records(200, 5, las=("E09000033",)), make_records(300, 9, prefix="other")]
    )
    assert stored["test_id"].sort().to_list() == expect["test_id"].sort().to_list()
    manifest = read_manifest(tmp_path / "s")
    assert sum(p["rows"] for p in manifest["partitions"]["records"].values()) == 500
    assert manifest["files"][str(path.resolve())]["las"] == ["E09000033"]
    verify_store(tmp_path / "s")


def test_partition_that_loses_every_row_is_removed_not_left_empty(tmp_path):
    path = write(make_records(100, 1, las=("E06000001",)), tmp_path / "a.parquet")
    ingest([path], tmp_path / "s", progress=False)
    write(make_records(100, 1, las=("E09000033",)), path)
    report = ingest([path], tmp_path / "s", progress=False)
    assert report.partitions_removed == ("records/la_code=E06000001",)
    assert not (tmp_path / "s" / "records" / "la_code=E06000001").exists()
    verify_store(tmp_path / "s")


def test_verify_store_names_a_tampered_partition(tmp_path):
    ingest([write(make_records(100, 1), tmp_path / "a.parquet")], tmp_path / "s", progress=False)
    part = tmp_path / "s" / "records" / "la_code=E08000025" / "part-0.parquet"
    pl.read_parquet(part).head(3).write_parquet(part)
    with pytest.raises(StoreError, match=r"partition records/la_code=E08000025 sha256 differs"):
        verify_store(tmp_path / "s")


def test_a_commit_killed_halfway_is_rolled_forward(tmp_path, monkeypatch):
    ingest([write(make_records(200, 1), tmp_path / "a.parquet")], tmp_path / "s", progress=False)
    real_rename, calls = os.rename, []

    def dying_rename(src, dst):  # the 3rd rename "loses power"
        calls.append(src)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_rename(src, dst)

    monkeypatch.setattr(st.os, "rename", dying_rename)
    b = write(make_records(200, 2), tmp_path / "b.parquet")
    with pytest.raises(KeyboardInterrupt):
        ingest([tmp_path / "a.parquet", b], tmp_path / "s", progress=False)
    monkeypatch.setattr(st.os, "rename", real_rename)
    with pytest.raises(StoreError, match="commit was interrupted"):
        verify_store(tmp_path / "s")
    again = ingest([tmp_path / "a.parquet", b], tmp_path / "s", progress=False)
    assert any("completed the interrupted commit" in m for m in again.messages)
    assert again.status == "noop"
    verify_store(tmp_path / "s")
    assert records(tmp_path / "s").height == 400


KILL_SCRIPT = textwrap.dedent("""
    import sys
    from lds_dask.ingest.run import ingest, IngestParams
    ingest([sys.argv[1]], sys.argv[2], progress=False, params=IngestParams(min_bundles=40))
""")


def test_killed_ingest_leaves_the_old_store_and_a_rerun_completes_it(tmp_path):
    first = write(make_records(1000, 1), tmp_path / "raw" / "a0.parquet")
    store, clean = tmp_path / "s", tmp_path / "clean"
    ingest([first], store, progress=False)
    before = snapshot(store)
    for i in range(1, 13):
        write(make_records(20000, i + 1), tmp_path / "raw" / f"a{i:02d}.parquet")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "raw"), str(store)])
    deadline = time.monotonic() + 60
    while not list((store / "_tmp").glob("*/stage/records/*/*.arrow")):
        assert proc.poll() is None and time.monotonic() < deadline, "ingest ended before the kill"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any((store / "_tmp").iterdir())  # killed mid-write, temp area left behind
    live = {k: v for k, v in snapshot(store).items() if not k.startswith("_tmp/")}
    assert live == before
    verify_store(store)
    rerun = ingest([tmp_path / "raw"], store, progress=False)
    assert any("removed the temp area" in m for m in rerun.messages)
    ingest([first], clean, progress=False)
    ingest([tmp_path / "raw"], clean, progress=False)
    parts = {k: v["sha256"] for k, v in read_manifest(store)["partitions"]["records"].items()}
    assert parts == {
        k: v["sha256"] for k, v in read_manifest(clean)["partitions"]["records"].items()
    }
    assert records(store).equals(records(clean))
    assert not (store / "_tmp").exists() or not any((store / "_tmp").iterdir())


def test_dask_cluster_run_equals_in_process_run(tmp_path):
    from lds_dask.runtime.cluster import get_client

    raw = tmp_path / "raw"
    for i in range(3):
        write(
            make_records(300, i, prefix="x").vstack(make_records(5, 0, prefix="x")),
            raw / f"f{i}.parquet",
        )
    local = ingest([raw], tmp_path / "a", progress=False)
    with get_client(n_workers=2, quiet=True) as client:
        dist = ingest([raw], tmp_path / "b", client=client, progress=False)
    assert [f["reasons"] for f in local.files] == [f["reasons"] for f in dist.files]
    assert records(tmp_path / "a").equals(records(tmp_path / "b"))
    pa_, pb = read_manifest(tmp_path / "a"), read_manifest(tmp_path / "b")
    assert pa_["partitions"] == pb["partitions"]
