"""Shared test fixtures. Paths: the repo root and the shared reference folder beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (CI lays it there). Tests that read it fail loudly if absent."""
    assert SHARED.is_dir(), f"expected the shared reference folder at {SHARED}"
    return SHARED
