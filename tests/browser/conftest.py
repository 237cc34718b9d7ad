"""Browser-test fixtures: a small fake cube on disk, headless Debian chromium, servers.

Chromium comes from apt (`apt-get install chromium`), never `playwright install`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"
URL_LINE = re.compile(r"explorer: (http://\S+)")


@pytest.fixture(scope="session")
def cube_path(tmp_path_factory) -> Path:
    """The 309-LA fake cube (8 weeks) written to zarr once per session."""
    from tests.cube_fixture import write_fake_cube

    path = tmp_path_factory.mktemp("cube") / "fake.zarr"
    write_fake_cube(path, weeks=8, seed=0)
    return path


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium with a fresh profile directory."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian chromium: apt-get install -y chromium"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1100},
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


class PageLog:
    """Console errors, page errors and every requested URL of one page."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

    def off_host(self, allowed=("127.0.0.1", "localhost")) -> list[str]:
        """Requests that went anywhere but this machine (file:, data:, blob: are local)."""
        return [u for u in self.requests if not _is_local(u, allowed)]


def _is_local(url: str, allowed) -> bool:
    if url.startswith(("file:", "data:", "blob:")):
        return True
    m = re.match(r"^(?:https?|wss?)://([^/:]+)", url)
    return bool(m) and m.group(1) in allowed


@pytest.fixture()
def new_page(browser):
    pages = []

    def make():
        page = browser.new_page()
        pages.append(page)
        return page, PageLog(page)

    yield make
    for page in pages:
        page.close()


def start_explorer(cube: Path, *extra: str, timeout: float = 60.0):
    """Run `lds-dask explore` on a free port; return (process, URL) once it prints its URL."""
    from lds_dask.outputs.explore import find_free_port

    port = find_free_port()
    cmd = [sys.executable, "-m", "lds_dask", "explore", str(cube), "--port", str(port), *extra]
    env = os.environ | {"PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO_ROOT
    )
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if m := URL_LINE.search(line):
            return proc, m.group(1)
    proc.kill()
    raise AssertionError("explorer printed no URL:\n" + "".join(seen[-30:]))


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
