"""ACRO in a virtual environment of its own, to check exports with ACRO's own loader.

acro (1.0.2, its latest release) pins pandas<=2.3.3 and this project needs pandas 3, so acro
cannot be installed beside lds_dask. The first test that needs it builds a venv holding
``acro==ACRO_VERSION`` (the version results.json declares; ``load_records`` refuses any
other) under the user cache, ``$XDG_CACHE_HOME/lds-dask/acro-<version>`` (default
``~/.cache``), and later sessions reuse it. A venv without its ``ready`` mark (a build that
stopped half way) or whose acro no longer imports is rebuilt; a lock keeps two pytest runs
on one machine from building it at once. Nothing here skips: when the venv cannot be built
or acro cannot be imported, the test that asked fails and says which step failed.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lds_dask.outputs.acro import ACRO_VERSION

CHECK_SCRIPT = Path(__file__).with_name("acro_check.py")
READY = "ready"
BUILD_TIMEOUT_S = 420  # a cold build took 41 s here; pip's own retries stay inside this


def venv_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "lds-dask" / f"acro-{ACRO_VERSION}"


def _env() -> dict[str, str]:
    """This environment without the variables that would put lds_dask on acro's path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _run(cmd: list, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        env=_env(),
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def _step(cmd: list, what: str) -> None:
    try:
        done = _run(cmd, BUILD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"ACRO venv: could not {what}: {exc}", pytrace=False)
    if done.returncode:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        pytest.fail(f"ACRO venv: could not {what} (exit {done.returncode}):\n{tail}", pytrace=False)


def _importable_version(python: Path) -> str | None:
    if not python.is_file():
        return None
    probe = "import acro.record; from acro.version import __version__ as v; print(v)"
    done = _run([python, "-c", probe], 120)
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def acro_python() -> Path:
    """The python of the acro venv, built first if it is missing or broken."""
    home = venv_dir()
    python = home / "bin" / "python"
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / READY).is_file() and _importable_version(python) == ACRO_VERSION:
            return python
        shutil.rmtree(home, ignore_errors=True)
        _step([sys.executable, "-m", "venv", home], f"create a venv at {home}")
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _step([*pip, f"acro=={ACRO_VERSION}"], f"pip install acro=={ACRO_VERSION} into {home}")
        found = _importable_version(python)
        if found != ACRO_VERSION:
            pytest.fail(
                f"ACRO venv at {home}: acro imports as {found!r}, not {ACRO_VERSION}", pytrace=False
            )
        (home / READY).write_text(ACRO_VERSION + "\n")
    return python


def run_acro_check(directory: Path) -> subprocess.CompletedProcess:
    """tests/acro_check.py on an export folder, in the acro venv."""
    return _run([acro_python(), CHECK_SCRIPT, directory], 300)


def assert_acro_loads(directory: Path) -> dict[str, list[str]]:
    """ACRO's load_records reads the export and every file it names exists; returns
    {output uid: [file names]} as ACRO's check saw them."""
    done = run_acro_check(directory)
    assert done.returncode == 0, f"ACRO check of {directory} failed:\n{done.stderr}"
    report = json.loads(done.stdout)
    assert report["acro"] == ACRO_VERSION
    return report["outputs"]
