"""Job spec schema: the committed specs parse; every kind of mistake is one clear line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from lds_dask.cli import main
from lds_dask.refresh.jobspec import JobSpecError, load_jobspec

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
[job]
name = "t"
[inputs]
raw = ["extracts"]
[outputs]
root = "{root}"
store = "store"
cube = "cube.zarr"
"""


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    (tmp_path / "extracts").mkdir()
    (tmp_path / "extracts" / "a.csv").write_text("x\n")
    return tmp_path


def write(spec_dir: Path, extra: str = "", base: str = MINIMAL) -> Path:
    path = spec_dir / "job.toml"
    path.write_text(base.format(root=spec_dir / "out") + extra)
    return path


def test_demo_spec_parses_with_synth_and_all_stages():
    spec = load_jobspec(REPO / "jobs" / "demo.toml")
    assert spec.synth.scale == 0.01 and spec.synth.weeks == 52
    assert spec.synth.dirty_rate == 0.001 and spec.report.las == ()
    assert spec.outputs.root == Path.cwd().resolve() / "lds-demo"
    assert spec.outputs.synth == spec.outputs.root / "synth"
    assert {"csv", "parquet"} <= set(spec.export.formats)


def test_national_spec_parses_and_names_its_placeholder_inputs():
    spec = load_jobspec(REPO / "jobs" / "national_refresh.toml", check_inputs=False)
    assert spec.synth is None and spec.inputs.raw
    with pytest.raises(
        JobSpecError,
        match=r"\[inputs\] raw: no such file or directory: "
        r"/srs/project/EDIT",
    ):
        load_jobspec(REPO / "jobs" / "national_refresh.toml")


def test_minimal_spec_gets_defaults_and_spec_relative_inputs(spec_dir):
    spec = load_jobspec(write(spec_dir))
    assert spec.inputs.raw == (spec_dir.resolve() / "extracts",)
    assert spec.outputs.cube == spec_dir / "out" / "cube.zarr"
    assert spec.outputs.export is None and spec.outputs.report is None
    assert spec.disclosure.threshold == 10 and spec.cube.period_starts == (dt.date(2020, 9, 1),)
    assert len(spec.sha256) == 64


def test_root_override_moves_every_output(spec_dir, tmp_path):
    spec = load_jobspec(write(spec_dir), root=tmp_path / "o")
    assert spec.outputs.store == (tmp_path / "o" / "store").resolve()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[cube]\nbreakdown = ["sex"]\n', r"\[cube\] unknown key 'breakdown'"),
        ('[clusterr]\nscheduler = ""\n', r"unknown section \[clusterr\]"),
        ('[disclosure]\nthreshold = "10"\n', r"\[disclosure\] threshold must be int, got str"),
        ("[disclosure]\nrounding = 3\n", r"\[disclosure\] rounding: 3 is not one of 0, 5, 10"),
        ('[export]\nformats = ["pdf"]\n', r"\[export\] formats: 'pdf' is not one of"),
        ('[report]\nlas = ["E99999999"]\n', r"\[report\] las: 'E99999999' is not an English LAD21"),
        ('[cube]\nperiod_names = ["a"]\n', r"\[cube\] period_names needs one more name"),
        ('[cube]\npeople_scope = "LFD"\n', r"\[cube\] people_scope: 'LFD' is not one of PCR, ALL"),
        ("[synth]\nscale = 0.01\n", r"exactly one of \[inputs\]"),
        ("[cluster]\nn_workers = 1.5\n", r"\[cluster\] n_workers must be int, got float"),
    ],
)
def test_mistakes_are_one_line_errors_naming_the_key(spec_dir, extra, message):
    with pytest.raises(JobSpecError, match=message) as err:
        load_jobspec(write(spec_dir, extra))
    assert "\n" not in str(err.value) and "job.toml" in str(err.value)


def test_missing_input_names_the_path(spec_dir):
    path = write(
        spec_dir,
        "",
        MINIMAL.replace('raw = ["extracts"]', 'raw = ["extracts"]\nsurvey = "nope.parquet"'),
    )
    with pytest.raises(
        JobSpecError,
        match=r"\[inputs\] survey: no such file or directory: "
        r".*nope\.parquet",
    ):
        load_jobspec(path)


def test_missing_required_section_and_key(spec_dir):
    with pytest.raises(JobSpecError, match=r"missing section \[outputs\]"):
        load_jobspec(write(spec_dir, "", MINIMAL.split("[outputs]")[0]))
    with pytest.raises(JobSpecError, match=r"\[outputs\] missing key 'cube'"):
        load_jobspec(write(spec_dir, "", MINIMAL.replace('cube = "cube.zarr"', "")))


def test_plots_need_las_when_switched_on(spec_dir):
    path = write(spec_dir, "", MINIMAL + 'plots = "plots"\n')
    with pytest.raises(JobSpecError, match=r"\[plots\] las must name at least one LA"):
        load_jobspec(path)


def test_not_toml_and_no_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[job\nname=")
    with pytest.raises(JobSpecError, match="not valid TOML"):
        load_jobspec(bad)
    with pytest.raises(JobSpecError, match="no such job spec"):
        load_jobspec(tmp_path / "absent.toml")


def test_to_dict_is_json_ready(spec_dir):
    import json

    d = load_jobspec(write(spec_dir)).to_dict()
    assert json.loads(json.dumps(d))["cube"]["period_starts"] == ["2020-09-01"]


def test_cli_bad_spec_exits_2_with_one_line(spec_dir):
    path = write(spec_dir, '[export]\nformat = ["csv"]\n')
    result = CliRunner().invoke(main, ["refresh", str(path)])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines == [f"error: {path}: [export] unknown key 'format' (allowed: formats)"]
