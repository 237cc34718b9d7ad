"""Fixtures of the fault tests: the shared LocalCluster and the tiny job's reference run
(one instance per session, shared with tests/integration through ``refresh_helpers``)."""

from __future__ import annotations

import pytest

from tests.faults import refresh_helpers as rh


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
