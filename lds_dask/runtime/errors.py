"""Expected failures and the exit code of each kind, declared once for every command.

An expected failure is an :class:`LdsError`: its message is one line, written by this
package, naming files, lines, columns, rules and counts, never a value of a record. Each
subclass carries the exit code the command line ends with (:class:`ExitCode`; README's
"Exit codes" table is checked against it). Anything else that escapes is a bug: it is
described by :func:`describe_unexpected` with its type and where it was raised, never its
message or locals, which can hold data (a parser quotes the record it failed on).
"""

from __future__ import annotations

import traceback
from enum import IntEnum
from pathlib import Path
from typing import ClassVar


class ExitCode(IntEnum):
    """The exit codes of every ``lds-dask`` command."""

    OK = 0
    UNEXPECTED = 1
    BAD_INPUT = 2
    ROWS_REJECTED = 3
    WORKERS_LOST = 4
    WRITE_FAILED = 5
    DISCLOSURE_REFUSED = 6


EXIT_MEANINGS = {
    ExitCode.OK: "success (for `validate`: every row is valid)",
    ExitCode.UNEXPECTED: "unexpected error: a bug (the message gives its type and code location)",
    ExitCode.BAD_INPUT: (
        "bad input: unreadable or malformed files, options, job specs, a store or cube "
        "that fails its checks"
    ),
    ExitCode.ROWS_REJECTED: (
        "rows rejected: `validate` found invalid rows; `ingest` quarantined more than "
        "`--max-reject-rate` (nothing committed)"
    ),
    ExitCode.WORKERS_LOST: "Dask workers were lost (killed, out of memory) and the run stopped",
    ExitCode.WRITE_FAILED: "an output could not be written (full disk, permissions, a path under a file)",
    ExitCode.DISCLOSURE_REFUSED: "refused by disclosure control: an output could not be made safe",
}


class LdsError(Exception):
    """An expected failure with a one-line message that is safe to show anywhere."""

    exit_code: ClassVar[ExitCode] = ExitCode.UNEXPECTED


class BadInputError(LdsError):
    """Input that cannot be used: a file, an option, a spec, a store or cube failing checks."""

    exit_code = ExitCode.BAD_INPUT


class RowsRejectedError(LdsError):
    """Rows failed validation (more of them than allowed)."""

    exit_code = ExitCode.ROWS_REJECTED


class WorkersLostError(LdsError):
    """Dask workers died (killed, out of memory) while tasks ran on them."""

    exit_code = ExitCode.WORKERS_LOST


class WriteFailedError(LdsError):
    """An output could not be written (full disk, permissions, a path under a file)."""

    exit_code = ExitCode.WRITE_FAILED


class DisclosureRefusedError(LdsError):
    """Disclosure control refused an output: a rule could not be applied or checked."""

    exit_code = ExitCode.DISCLOSURE_REFUSED


class UnexpectedError(LdsError):
    """A bug, described by :func:`describe_unexpected` (type and code location only)."""

    exit_code = ExitCode.UNEXPECTED


def exit_code_of(exc: BaseException) -> ExitCode:
    """The exit code for ``exc``. An LdsError raised ``from`` another exception restates it
    (a stage naming its cause) and ends with the cause's code, a bug's (1) when the cause
    is no LdsError; to restate a failure as another kind, raise ``from None``. Anything but
    an LdsError is a bug."""
    if not isinstance(exc, LdsError):
        return ExitCode.UNEXPECTED
    return exc.exit_code if exc.__cause__ is None else exit_code_of(exc.__cause__)


def one_line(exc: BaseException) -> str:
    """The message of an expected failure on one line (a bug: :func:`describe_unexpected`)."""
    if not isinstance(exc, LdsError):
        return describe_unexpected(exc)
    return " ".join(str(exc).split()) or type(exc).__name__


def describe_unexpected(exc: BaseException, where: str = "") -> str:
    """``unexpected <Type> at file:line in function < ...`` (innermost frame first).

    The exception's message and locals are left out on purpose: a library's message can
    quote the data it failed on. Ctrl-C and the like are said to be an interruption."""
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    if not isinstance(exc, Exception):
        return f"interrupted ({name})"
    frames = traceback.extract_tb(exc.__traceback__)[-8:]
    at = " < ".join(f"{_short(f.filename)}:{f.lineno} in {f.name}" for f in reversed(frames))
    place = f" in {where}" if where else ""
    return f"unexpected {name}{place} at {at or 'an unknown location'} (a bug; please report it)"


def _short(filename: str) -> str:
    """A source path from its package folder on (``lds_dask/ingest/stage.py``)."""
    parts = Path(filename).parts
    for anchor in ("lds_dask", "site-packages", "dist-packages"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[i + (anchor != "lds_dask") :])
    return Path(filename).name
