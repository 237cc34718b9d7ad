"""A full or unwritable output directory: a clear one-line error, and nothing half-written
left where a later run (or a reader) would take it as valid."""

from __future__ import annotations

import errno
import json

import pytest
from click.testing import CliRunner

from lds_dask import cube
from lds_dask.cli import main
from lds_dask.jobspec import load_jobspec
from lds_dask.refresh import LATEST_FILE, STATE_DIR, RefreshError, read_state
from tests.faults.refresh_helpers import refresh, spec_text, synth_inputs, write_spec


def test_output_root_under_a_file_is_a_clear_error(tmp_path_factory, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output folder should be")
    spec = write_spec(
        tmp_path / "job.toml", spec_text(synth_inputs(tmp_path_factory), blocker / "out")
    )
    result = CliRunner().invoke(main, ["refresh", str(spec), "--quiet"])
    assert result.exit_code == 1
    assert f"error: output root {blocker / 'out'}: cannot write (Not a directory)" in result.output
    assert blocker.read_text().startswith("a file")


def test_disk_full_while_writing_the_cube_leaves_nothing_half_written(
    tmp_path_factory, tmp_path, monkeypatch
):
    def fill_disk(store, out, **kwargs):
        (out / "total").mkdir(parents=True)
        (out / "total" / "zarr.json").write_text("{")  # the start of a write...
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "total" / "c0"))

    monkeypatch.setattr(cube, "build_cube", fill_disk)
    out = tmp_path / "out"
    spec = write_spec(
        tmp_path / "job.toml",
        spec_text(synth_inputs(tmp_path_factory), out, n_workers=1, report=False),
    )
    with pytest.raises(
        RefreshError,
        match=r"^stage cube: cannot write .*total/c0: "
        r"No space left on device$",
    ):
        refresh(spec)
    assert not (out / "cube.zarr").exists()
    assert not list(out.glob("*cube.zarr*"))  # the partial write was removed
    assert set(read_state(load_jobspec(spec))) == {"ingest"}  # only what completed
    assert not (out / LATEST_FILE).exists()  # no run is claimed complete
    failed = [json.loads(p.read_text()) for p in (out / STATE_DIR).glob("2*.json")]
    assert [m["status"] for m in failed] == ["failed"]
    assert "No space left on device" in failed[0]["error"]
    assert failed[0]["stages"]["ingest"]["status"] == "ran"
