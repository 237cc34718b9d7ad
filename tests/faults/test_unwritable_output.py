"""A full or unwritable output directory: a clear one-line error, and nothing half-written
left where a later run (or a reader) would take it as valid."""

from __future__ import annotations

import errno
import json

import pytest
from click.testing import CliRunner

from lds_dask.cli import main
from lds_dask.cube import build as cube
from lds_dask.refresh.jobspec import load_jobspec
from lds_dask.refresh.run import LATEST_FILE, STATE_DIR, RefreshError, hash_tree, read_state
from lds_dask.runtime.errors import ExitCode
from tests.faults.refresh_helpers import copy_completed_run, refresh, spec_text, write_spec


def test_output_root_under_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output folder should be")
    spec = write_spec(tmp_path / "job.toml", spec_text(None, blocker / "out"))
    result = CliRunner().invoke(main, ["refresh", str(spec), "--quiet"])
    assert result.exit_code == ExitCode.WRITE_FAILED
    assert result.output.splitlines()[-2:] == [
        f"error: output root {blocker / 'out'}: cannot write (Not a directory)",
        f"run manifest: {blocker / 'out' / STATE_DIR}",
    ]
    assert blocker.read_text().startswith("a file")


def test_disk_full_while_writing_the_cube_leaves_nothing_half_written(
    reference, synth, local_client, tmp_path, monkeypatch
):
    def fill_disk(store, out, **kwargs):
        (out / "total").mkdir(parents=True)
        (out / "total" / "zarr.json").write_text("{")  # the start of a write...
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "total" / "c0"))

    out = copy_completed_run(reference, tmp_path / "out")
    previous_cube, previous_latest = hash_tree(out / "cube.zarr"), (out / LATEST_FILE).read_text()
    monkeypatch.setattr(cube, "build_cube", fill_disk)
    # a new task size: the cube must be rebuilt (into a temp folder, then swapped in)
    spec = write_spec(tmp_path / "job.toml", spec_text(synth, out, bundle_mb=2.0))
    with pytest.raises(
        RefreshError,
        match=r"^stage cube: cannot write .*total/c0: No space left on device$",
    ):
        refresh(spec, local_client)
    assert hash_tree(out / "cube.zarr") == previous_cube  # the previous cube is intact
    assert [p.name for p in out.glob("*cube.zarr*")] == ["cube.zarr"]  # the partial is gone
    state = read_state(load_jobspec(spec))
    assert "ingest" in state and "cube" not in state  # the half-built cube is not claimed
    assert (out / LATEST_FILE).read_text() == previous_latest  # no new run claimed complete
    failed = [json.loads(p.read_text()) for p in (out / STATE_DIR).glob("2*.json")]
    assert [m["status"] for m in failed] == ["failed"]
    assert "No space left on device" in failed[0]["error"]
    assert "cube" not in failed[0]["stages"]  # a failed stage records no result
