"""Shared test fixtures. Tests read no data from outside the repository (no ../shared):
a fresh clone runs the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import refresh_helpers as rh

REPO_ROOT = Path(__file__).resolve().parents[1]

# The refresh and fault tests share one LocalCluster and one reference run of the tiny job.


@pytest.fixture(scope="session")
def local_client(request):
    """The session's LocalCluster client (2 single-threaded worker processes)."""
    return rh.shared_client(request)


@pytest.fixture(scope="session")
def reference(tmp_path_factory, local_client):
    """Output root of the uninterrupted run of the whole tiny job."""
    return rh.reference_run(tmp_path_factory, local_client)


@pytest.fixture(scope="session")
def synth(reference):
    """The tiny job's synthetic extracts (read-only)."""
    return rh.synth_inputs(reference)
