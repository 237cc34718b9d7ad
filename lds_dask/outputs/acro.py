"""ACRO ``results.json``: the output-checking evidence of an export (acro 1.0.2 schema).

Written in the layout of ``acro.record.Records.finalise_json`` and read by
``acro.record.load_records`` and the SACRO viewer: one output per exported node.

Determinism: everything in ``results.json`` follows from the cube and the rules except each
output's ``timestamp`` (one time per export; ``SOURCE_DATE_EPOCH``, when set, fixes it, as
in reproducible builds), so two exports of the same cube differ only there. The file is one
line of JSON (ACRO indents; ``load_records`` reads both).
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import polars as pl

from lds_dask.sdc import rules as sdc

# ACRO's load_records refuses a results.json whose version differs from its own: pin acro==1.0.2
ACRO_VERSION = "1.0.2"
ACRO_TOOL = {
    "@type": "SoftwareApplication",
    "name": "ACRO",
    "url": "https://github.com/AI-SDC/ACRO",
    "version": ACRO_VERSION,
}
ACRO_CHECKS = (
    "RequiredZeroCheck",
    "PresenceOfZeroCheck",
    "PresenceOfLinkedTableCheck",
    "MinimumThresholdCheck",
)
OUTCOME_CELL_LIMIT = 100_000  # above this, per-cell outcome is the table's status column
RESULTS_NAME = "results.json"


def export_time() -> datetime.datetime:
    """The time stamped on an export: ``SOURCE_DATE_EPOCH`` if set, else now (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
    return datetime.datetime.now(datetime.UTC)


def status_counts(frame: pl.DataFrame) -> dict[str, int]:
    """Cells per status name (all four names present)."""
    counts = dict(frame.group_by("status").len().iter_rows())
    return {s: int(counts.get(s, 0)) for s in sdc.STATUS_NAMES}


def write_results_json(
    directory: Path,
    tables: dict,
    rules: sdc.DisclosureRules,
    command: str,
    when: datetime.datetime,
    value_column: int,
) -> Path:
    """``results.json`` in ACRO's ``finalise_json`` schema, one output per node.

    ``tables`` maps node name -> {frame, files}. Status is ``pass`` when nothing needed
    treatment and ``review`` when suppression or rounding was applied (as ACRO does after
    automatic suppression), with the exception text ACRO writes. ``sdc`` counts cells per
    check: MinimumThresholdCheck (primary, including zeros), PresenceOfLinkedTableCheck
    (secondary, against differencing; suppressed zeros are not told apart); ``cells`` and
    ``outcome`` list [row, column] / per-row outcomes for tables up to
    :data:`OUTCOME_CELL_LIMIT` rows, above which the table's own ``status`` column is the
    per-cell outcome (said in ``comments``).
    """
    stamp = when.isoformat()
    results = {
        name: _acro_record(name, t, rules, command, stamp, value_column)
        for name, t in tables.items()
    }
    doc = {"version": ACRO_VERSION, "tool": ACRO_TOOL, "results": results}
    path = directory / RESULTS_NAME
    # One line: json's C encoder (indent= falls back to pure Python, ~10x slower on the
    # per-cell lists); acro's load_records reads either.
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _acro_record(name: str, table: dict, rules, command: str, stamp: str, column: int) -> dict:
    frame: pl.DataFrame = table["frame"]
    counts = status_counts(frame)
    treated = frame.height - counts["ok"]
    listed = frame.height <= OUTCOME_CELL_LIMIT
    cells = _acro_cells(frame, column) if listed else {k: [] for k in ACRO_CHECKS}
    sdc_record = {
        "summary": {k: len(v) if listed else _count_check(frame, k) for k, v in cells.items()},
        "cells": cells,
    }
    return {
        "uid": name,
        "status": "review" if treated else "pass",
        "type": "table",
        "properties": {
            "method": "lds_dask.outputs.export",
            "node": f"/{name}",
            "mitigation": "suppress" + ("+round" if rules.rounding else ""),
            **json.loads(rules.to_json()),
        },
        "files": [{"name": f, "sdc": sdc_record} for f in table["files"]],
        "outcome": {"value": dict(enumerate(frame["status"].to_list()))} if listed else {},
        "command": command,
        "summary": _acro_summary(counts, rules, treated),
        "timestamp": stamp,
        "comments": _acro_comments(rules, listed, frame.height),
        "exception": _acro_exception(rules) if treated else "",
        "fair": {},
    }


def _check_masks() -> dict[str, pl.Expr]:
    """Rows failing each ACRO check. Suppressed zeros count under MinimumThresholdCheck:
    saying which suppressed cells were zero would itself disclose them."""
    return {
        "RequiredZeroCheck": pl.lit(False),
        "PresenceOfZeroCheck": pl.lit(False),
        "PresenceOfLinkedTableCheck": pl.col("status") == sdc.STATUS_NAMES[sdc.STATUS_SECONDARY],
        "MinimumThresholdCheck": pl.col("status") == sdc.STATUS_NAMES[sdc.STATUS_PRIMARY],
    }


def _acro_cells(frame: pl.DataFrame, column: int) -> dict[str, list]:
    rows = frame.select("status").with_row_index("_row")
    return {
        k: [[int(r), column] for r in rows.filter(mask)["_row"].to_list()]
        for k, mask in _check_masks().items()
    }


def _count_check(frame: pl.DataFrame, check: str) -> int:
    return int(frame.select(_check_masks()[check].sum()).item())


def _acro_exception(rules) -> str:
    """ACRO's own wording for automatic mitigation."""
    text = "Suppression automatically applied where needed"
    if rules.rounding:
        text += f"; rounding automatically applied to nearest {rules.rounding}"
    return text


def _acro_summary(counts: dict, rules, treated: int) -> str:
    state = "review" if treated else "pass"
    return (
        f"{state}; threshold: {counts['suppressed_primary']} cells suppressed (threshold "
        f"{rules.threshold}, zeros {'suppressed' if rules.suppress_zeros else 'shown'}); "
        f"differencing: {counts['suppressed_secondary']} cells suppressed (secondary); "
        f"rounding: {counts['rounded']} cells rounded to base {rules.rounding}; "
    )


def _acro_comments(rules, listed: bool, rows: int) -> list[str]:
    comments = [
        "Disclosure control applied by lds_dask.sdc.rules before export: primary "
        "and secondary suppression; every margin holds 0 or >= 2 suppressed cells."
    ]
    if rules.rounding:
        comments.append(sdc.ROUNDING_NOTE.format(base=rules.rounding))
    if not listed:
        comments.append(f"{rows} rows: the per-cell outcome is the table's status column.")
    return comments
