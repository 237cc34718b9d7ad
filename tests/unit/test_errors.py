"""Exit codes are declared once (runtime/errors.py), documented in the README, and every
command ends through the one error path: `error: <one line>` and the error's code."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lds_dask.cli import COMMANDS, exits_on_error
from lds_dask.contract.schemas import SchemaError
from lds_dask.cube.read import CubeError
from lds_dask.ingest.run import ReconciliationError, RejectRateError
from lds_dask.outputs.export import ExportError
from lds_dask.refresh.jobspec import JobSpecError
from lds_dask.refresh.state import RefreshError
from lds_dask.runtime.errors import (
    EXIT_MEANINGS,
    ExitCode,
    LdsError,
    describe_unexpected,
    exit_code_of,
)
from lds_dask.sdc.margins import DisclosureError
from lds_dask.store import layout, read

REPO = Path(__file__).resolve().parents[2]
MARKER = "PERSONALMARKER0007"


def test_readme_table_is_the_declared_codes():
    text = (REPO / "README.md").read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.M)
    assert [(int(c), m) for c, m in rows] == [(int(c), m) for c, m in EXIT_MEANINGS.items()]
    assert list(EXIT_MEANINGS) == list(ExitCode)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (SchemaError, ExitCode.BAD_INPUT),
        (layout.StoreError, ExitCode.BAD_INPUT),
        (read.StoreError, ExitCode.BAD_INPUT),
        (CubeError, ExitCode.BAD_INPUT),
        (ExportError, ExitCode.BAD_INPUT),
        (JobSpecError, ExitCode.BAD_INPUT),
        (RejectRateError, ExitCode.ROWS_REJECTED),
        (RefreshError, ExitCode.WRITE_FAILED),
        (DisclosureError, ExitCode.DISCLOSURE_REFUSED),
        (ReconciliationError, ExitCode.UNEXPECTED),
    ],
)
def test_every_error_class_carries_its_code(kind, code):
    assert issubclass(kind, LdsError) and kind.exit_code == code


def test_a_stage_error_ends_with_its_causes_code():
    def wrapped(cause):
        try:
            raise cause
        except Exception as exc:
            try:
                raise RefreshError("stage ingest: ...") from exc
            except RefreshError as outer:
                return outer

    assert exit_code_of(wrapped(SchemaError("x.csv: line 2"))) == ExitCode.BAD_INPUT
    assert exit_code_of(wrapped(DisclosureError("node total"))) == ExitCode.DISCLOSURE_REFUSED
    assert exit_code_of(wrapped(KeyError(MARKER))) == ExitCode.UNEXPECTED
    assert exit_code_of(RefreshError("output root: cannot write")) == ExitCode.WRITE_FAILED
    assert exit_code_of(KeyError(MARKER)) == ExitCode.UNEXPECTED


def test_a_bug_is_told_by_type_and_place_never_by_its_text():
    try:
        {}[MARKER]
    except KeyError as exc:
        text = describe_unexpected(exc)
    assert MARKER not in text
    assert re.fullmatch(
        r"unexpected KeyError at test_errors\.py:\d+ in test_a_bug_is_told_by_type_and_place"
        r"_never_by_its_text \(a bug; please report it\)",
        text,
    ), text


def test_every_command_ends_through_the_one_error_path():
    for name, (module, _, _) in COMMANDS.items():
        try:
            command = importlib.import_module(f"lds_dask.cli.{module}").command
        except ModuleNotFoundError:  # an optional extra that is not installed
            continue
        assert getattr(command.callback, "exits_on_error", False), name
    for path in (REPO / "lds_dask" / "cli").glob("*.py"):
        source = path.read_text()
        assert not re.search(r"^EXIT_\w+ *=|sys\.exit\(EXIT", source, flags=re.M), path.name
        assert path.name == "__init__.py" or "sys.exit(" not in source, path.name


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (SchemaError("x.csv: line 2, column person_id: rule"), 2, "x.csv: line 2, column"),
        (OSError(28, "No space left on device", "/out/f"), 5, "/out/f: cannot write (No space"),
        (ValueError(f"could not parse `{MARKER}`"), 1, "unexpected ValueError at"),
    ],
)
def test_the_error_path_prints_one_line_and_exits_with_the_code(raised, code, line):
    @click.command()
    @exits_on_error
    def command():
        raise raised

    result = CliRunner().invoke(command, [])
    assert result.exit_code == code
    assert result.output.startswith(f"error: {line}") and result.output.count("\n") == 1
    assert MARKER not in result.output and "Traceback" not in result.output
