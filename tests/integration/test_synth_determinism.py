"""Same seed and scale give byte-identical files whatever the number of workers."""

from __future__ import annotations

import pytest

from lds_dask.runtime.cluster import get_client
from synthetic_gen import generate

KW = {"scale": 0.001, "seed": 5, "weeks": 3, "dirty_rate": 0.01, "progress": False}


def hashes(manifest: dict) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in manifest["files"]}


@pytest.mark.cluster
def test_one_and_two_workers_and_in_process_write_identical_files(tmp_path):
    with get_client(n_workers=1, quiet=True) as client:
        one = generate(tmp_path / "one", client=client, **KW)
    with get_client(n_workers=2, quiet=True) as client:
        two = generate(tmp_path / "two", client=client, **KW)
    local = generate(tmp_path / "local", **KW)
    assert hashes(one) == hashes(two) == hashes(local)
    assert one["chunks"] >= 2
    assert (tmp_path / "one" / "manifest.json").read_bytes() == (
        tmp_path / "two" / "manifest.json"
    ).read_bytes()


def test_another_seed_changes_the_records(tmp_path):
    a = generate(tmp_path / "a", **KW)
    b = generate(tmp_path / "b", **{**KW, "seed": 6})
    recs = [p for p in hashes(a) if p.startswith("test_records/")]
    assert all(hashes(a)[p] != hashes(b)[p] for p in recs)
