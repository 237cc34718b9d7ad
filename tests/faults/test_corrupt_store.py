"""A store partition whose bytes no longer match the store manifest is refused with a
clear error naming the partition (never a record value), before any stage uses it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from lds_dask.cli import main
from lds_dask.refresh.run import hash_tree
from lds_dask.runtime.errors import ExitCode
from lds_dask.store.layout import StoreError, read_manifest, verify_store
from tests.faults.refresh_helpers import copy_completed_run, spec_text, write_spec


def test_corrupted_store_file_is_detected_by_manifest_hash(reference, synth, tmp_path):
    out = copy_completed_run(reference, tmp_path / "out")
    store = out / "store"
    verify_store(store)
    entry = read_manifest(store)["partitions"]["records"]["E06000001"]
    victim = store / entry["file"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    victim.write_bytes(bytes(data))
    before = hash_tree(out)

    with pytest.raises(StoreError, match="records/la_code=E06000001 sha256 differs"):
        verify_store(store)
    spec = write_spec(tmp_path / "job.toml", spec_text(synth, out, threshold=5))
    result = CliRunner().invoke(main, ["refresh", str(spec), "--quiet"])
    assert result.exit_code == ExitCode.BAD_INPUT  # the stage's cause: a store failing its check
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert errors == [
        f"error: stage ingest: StoreError: {store}: partition "
        "records/la_code=E06000001 sha256 differs from the manifest (file "
        "changed or corrupted)"
    ]
    after = hash_tree(out)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert all(k.startswith("_refresh/2") for k in changed)  # only the failed run's record
