"""Every command that writes a directory (cube, plots, report, each refresh stage) publishes
it through ``lds_dask.runtime.publish``: what it reads, a store, an input or a foreign
directory is never replaced."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from lds_dask.cli import main
from lds_dask.refresh.jobspec import load_jobspec
from lds_dask.refresh.run import RefreshError, run_refresh
from lds_dask.refresh.state import temp_output
from lds_dask.runtime.publish import MARKER, PublishError, marker_kind
from lds_dask.store.handmade import record_frame, write_store
from tests.cube_fixture import write_fake_cube

LA = "E06000001"


def hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def foreign(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("not written by lds-dask")
    return path


@pytest.fixture(scope="module")
def cube_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("targets") / "cube.zarr"
    write_fake_cube(path, weeks=2, seed=3)
    return path


@pytest.fixture
def store(tmp_path) -> Path:
    row = dict(test_id="t1", person_id="p1", specimen_date=dt.date(2020, 10, 5))
    return write_store(
        tmp_path / "store", record_frame([row | {"result": "NEGATIVE", "la_code": LA}])
    )


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cube_never_replaces_its_store_or_a_foreign_directory(store, tmp_path):
    before = hashes(store)
    for out, said in (
        (store, "is the store being read"),
        (store / "cube.zarr", "is inside the store being read"),
        (foreign(tmp_path / "mine"), "was not written by lds-dask"),
    ):
        result = invoke("cube", "--store", store, "--out", out, "--workers", "1", "--quiet")
        assert result.exit_code == 2 and said in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert hashes(store) == before and (tmp_path / "mine" / "notes.txt").is_file()


def one_plot(cube, la, safe=False):
    from lds_dask.outputs.plots import figures as plots

    return {"trend": plots.trend(cube, la, safe=safe)}


def test_plots_publish_a_marked_folder_and_replace_only_their_own(cube_path, tmp_path, monkeypatch):
    import lds_dask.cli.plots as cli_plots

    monkeypatch.setattr(cli_plots, "la_plots", one_plot)
    out, args = tmp_path / "plots", ("plots", "--cube", cube_path, "--la", LA)
    assert invoke(*args, "--out", out).exit_code == 0
    assert marker_kind(out) == "plots" and (out / f"{LA}_trend.html").is_file()
    again = invoke(*args, "--out", out)
    assert again.exit_code == 2 and "already exists (use --overwrite" in again.output
    (out / "old.html").write_text("from the last run")
    assert invoke(*args, "--out", out, "--overwrite").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [MARKER, f"{LA}_trend.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots"]


@pytest.mark.parametrize("where", ["cube", "inside", "foreign"])
def test_plots_refuse_the_cube_and_foreign_folders(cube_path, tmp_path, where):
    out = {"cube": cube_path, "inside": cube_path / "plots", "foreign": tmp_path / "mine"}[where]
    if where == "foreign":
        foreign(out)
    before = hashes(cube_path)
    result = invoke("plots", "--cube", cube_path, "--la", LA, "--out", out, "--overwrite")
    said = {"cube": "is the cube being read", "inside": "is inside", "foreign": "not written"}
    assert result.exit_code == 2 and said[where] in result.output, result.output
    assert hashes(cube_path) == before


@pytest.mark.parametrize("where", ["cube", "foreign"])
def test_report_refuses_the_cube_and_foreign_folders(cube_path, tmp_path, where):
    out = cube_path if where == "cube" else foreign(tmp_path / "mine")
    before = hashes(cube_path)
    result = invoke("report", "--cube", cube_path, "--out", out, "--la", LA, "--overwrite")
    said = "is the cube being read" if where == "cube" else "was not written by lds-dask"
    assert result.exit_code != 0 and said in result.output, result.output
    assert hashes(cube_path) == before and (where == "cube" or (out / "notes.txt").is_file())


SPEC = """
[job]
name = "t"
[inputs]
raw = ["{raw}"]
[outputs]
root = "{root}"
store = "store"
cube = "cube.zarr"
export = "{export}"
"""


@pytest.mark.parametrize(
    ("export", "said"),
    [
        ("store", "store: is the export of this job"),
        ("cube.zarr/tables", "cube.zarr: contains the export of this job"),
        ("{raw}/out", "out: is inside the input of this job"),
    ],
)
def test_a_refresh_whose_outputs_overlap_is_refused_before_any_stage(tmp_path, export, said):
    raw = tmp_path / "extracts"
    raw.mkdir()
    (raw / "a.csv").write_text("x\n")
    spec = tmp_path / "job.toml"
    root = tmp_path / "out"
    spec.write_text(SPEC.format(raw=raw, root=root, export=export.format(raw=raw)))
    with pytest.raises(RefreshError, match=f"\\[outputs\\] .*{said}"):
        run_refresh(load_jobspec(spec), say=lambda _: None)
    assert not (root / "store").exists()


def test_a_refresh_stage_never_replaces_a_foreign_output(tmp_path):
    cube = foreign(tmp_path / "cube.zarr")
    with pytest.raises(PublishError, match="was not written by lds-dask"):
        temp_output(cube, "cube")
    (cube / "notes.txt").unlink()
    (cube / MARKER).write_text('{"kind": "export"}')
    with pytest.raises(PublishError, match="holds the output of lds-dask export"):
        temp_output(cube, "cube")
