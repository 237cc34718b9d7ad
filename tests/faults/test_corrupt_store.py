"""A store partition whose bytes no longer match the store manifest is refused with a
clear error naming the partition (never a record value), before any stage uses it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from lds_dask.cli import main
from lds_dask.ingest import ingest
from lds_dask.store import StoreError, read_manifest, verify_store
from tests.faults.refresh_helpers import spec_text, synth_inputs, week_dirs, write_spec


def test_corrupted_store_file_is_detected_by_manifest_hash(tmp_path_factory, tmp_path):
    synth, out = synth_inputs(tmp_path_factory), tmp_path / "out"
    store = out / "store"
    ingest(
        week_dirs(synth),
        store,
        survey=synth / "survey_responses",
        ahah=synth / "ahah.parquet",
        progress=False,
    )
    verify_store(store)
    entry = read_manifest(store)["partitions"]["records"]["E06000001"]
    victim = store / entry["file"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern, same size
    victim.write_bytes(bytes(data))

    with pytest.raises(StoreError, match="records/la_code=E06000001 sha256 differs"):
        verify_store(store)
    spec = write_spec(tmp_path / "job.toml", spec_text(synth, out, n_workers=1, report=False))
    result = CliRunner().invoke(main, ["refresh", str(spec), "--quiet"])
    assert result.exit_code == 1
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert errors == [
        f"error: stage ingest: StoreError: {store}: partition "
        "records/la_code=E06000001 sha256 differs from the manifest (file "
        "changed or corrupted)"
    ]
    assert not (out / "cube.zarr").exists()
