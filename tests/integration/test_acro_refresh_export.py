"""The tiny refresh's export (the session's reference run), read by ACRO's own loader.

``acro.record.load_records`` runs in the acro venv (tests/acro_env.py) on the folder the
pipeline wrote: every output loads, and every file it names exists. Only results.json and
the files it names are looked at, not the tables' layout.
"""

from __future__ import annotations

import json

from tests.acro_env import assert_acro_loads


def test_acro_loads_every_output_of_the_refresh_export(reference):
    export = reference / "export"
    doc = json.loads((export / "results.json").read_text())
    outputs = assert_acro_loads(export)
    assert "total" in outputs and len(outputs) > 1
    assert set(outputs) == set(doc["results"])
    assert all(files for files in outputs.values())
