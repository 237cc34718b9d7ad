"""Export of disclosure-controlled aggregates: the only code that writes outward files.

``export_cube`` runs :func:`lds_dask.disclosure.safe_view` over a cube, checks the result
once more, and writes into ``DIR``:

- ``<node>.csv`` / ``<node>.parquet``: one tidy long table per cube node, columns
  :data:`COLUMNS`. ``value`` is text (numbers in shortest round-trip form, labels as they
  are) because significance labels share the column with numbers; a suppressed value is
  empty, never the number. An unsuppressed value may also be empty when the statistic is
  undefined (a DSR under 10 events, a population with no denominator).
- ``tables.xlsx`` (``--format xlsx``): one sheet per node, numbers as numbers. The ``/lsoa``
  node, and any node longer than one sheet (:data:`XLSX_MAX_NODE_ROWS`; of a 52-week
  national cube only ``/total``, ``/sex`` and ``/inequality`` fit), go to csv/parquet only:
  the manifest lists each node's files. openpyxl writes ~10^4-10^5 rows a second.
- ``results.json``: the ACRO ``finalise_json`` schema (read by ``acro.record.load_records``
  and the SACRO viewer), one output per node; ``manifest.json``: cube provenance, rules,
  counts of cells per status, files, code version; ``checksums/<file>.sha256``
  (``sha256sum -c`` format, run from ``DIR``).

Everything is written into a temporary sibling directory that is renamed into place at the
end, so an interrupted export never leaves a ``DIR`` that looks complete.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import xarray as xr

from lds_dask import __version__
from lds_dask import disclosure as sdc
from lds_dask.io import file_sha256

COLUMNS = (
    "area_code",
    "area_name",
    "area_type",
    "week",
    "breakdown",
    "category",
    "measure",
    "value",
    "status",
)
FORMATS = ("csv", "parquet", "xlsx")
XLSX_NAME, XLSX_MAX_ROWS, XLSX_EXCLUDED = "tables.xlsx", 1_048_575, ("lsoa",)
XLSX_SHEET_NAME_MAX = 31
XLSX_MAX_NODE_ROWS = XLSX_MAX_ROWS  # bigger nodes go to csv/parquet only (one sheet each)
TOTAL_CATEGORY, CATEGORY_JOIN = "all", "|"
MANIFEST_VERSION = 1
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
VALUE_COLUMN = COLUMNS.index("value")


class ExportError(ValueError):
    """An export that cannot be written (bad input, existing output, failed check)."""


def export_cube(
    cube: str | Path | xr.DataTree,
    out: str | Path,
    rules: sdc.DisclosureRules,
    formats: Sequence[str] = ("csv",),
    overwrite: bool = False,
    command: str = "lds_dask.export.export_cube",
) -> Path:
    """Write the disclosure-controlled view of ``cube`` to directory ``out``; returns it."""
    out = Path(out)
    formats = _check_formats(formats)
    if out.exists() and not overwrite:
        raise ExportError(f"{out}: already exists (use --overwrite to replace it)")
    tree, source = open_tree(cube)
    safe = sdc.safe_view(tree, rules)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        tables = write_tables(safe, tmp, formats)
        write_results_json(tmp, tables, rules, command)
        write_manifest(tmp, tree, source, rules, tables, formats)
        write_checksums(tmp)
        _move_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ExportError(
            f"unknown format(s) {', '.join(bad) or '(none)'}: use {', '.join(FORMATS)}"
        )
    return tuple(dict.fromkeys(formats))


def open_tree(cube: str | Path | xr.DataTree) -> tuple[xr.DataTree, str]:
    """The cube as a DataTree, and a description of where it came from."""
    if isinstance(cube, xr.DataTree):
        return cube, "<in-memory DataTree>"
    path = Path(cube)
    if not path.exists():
        raise ExportError(f"{path}: no such cube")
    try:
        from lds_dask.cube import open_cube
    except ImportError:
        open_cube = None
    try:
        tree = open_cube(path) if open_cube else xr.open_datatree(path, engine="zarr")
    except Exception as exc:  # zarr/xarray raise many types for a non-cube path
        raise ExportError(f"{path}: cannot open as a cube ({type(exc).__name__})") from None
    return tree, str(path.resolve())


def check_published(node: xr.Dataset, rules: sdc.DisclosureRules, name: str) -> None:
    """Refuse to write a node holding a published small count or a shown suppressed value."""
    for m in [m for m in sdc.COUNT_MEASURES + sdc.SURVEY_COUNTS if m in node.data_vars]:
        values, codes = node[m].values, node[m + sdc.STATUS_SUFFIX].values
        hidden = sdc.is_suppressed(codes)
        small = (values < rules.threshold) & ((values != 0) | rules.suppress_zeros)
        if (small & ~hidden).any() or not np.isnan(values[hidden]).all():
            raise sdc.DisclosureError(f"{name}: {m} failed the pre-export check; nothing written")


def write_tables(safe: xr.DataTree, directory: Path, formats: tuple[str, ...]) -> dict:
    """Write one long table per node; returns node name -> {frame, files}."""
    tables = {}
    for node in safe.subtree:
        if node.path == "/":
            continue
        ds = node.to_dataset(inherit=True)
        name = node.path.strip("/").replace("/", "__")
        check_published(ds, _rules_of(ds), name)
        frame = node_to_frame(name, ds)
        files = []
        for fmt in [f for f in formats if f != "xlsx"]:
            files.append(f"{name}.{fmt}")
            _write_frame(frame, directory / files[-1], fmt)
        tables[name] = {"frame": frame, "files": files}
    if "xlsx" in formats:
        write_xlsx(tables, directory / XLSX_NAME)
    return tables


def _rules_of(ds: xr.Dataset) -> sdc.DisclosureRules:
    return sdc.DisclosureRules(**json.loads(ds.attrs["disclosure_rules"]))


def _write_frame(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.write_csv(path, null_value="")
    else:
        frame.write_parquet(path)


def node_to_frame(name: str, ds: xr.Dataset) -> pl.DataFrame:
    """A safe node as a tidy long table (:data:`COLUMNS`), one row per cell and measure."""
    measures = [m for m in ds.data_vars if not m.endswith(sdc.STATUS_SUFFIX)]
    frames = [_measure_frame(name, ds, m) for m in measures]
    frames = [f for f in frames if f is not None]
    if not frames:
        return pl.DataFrame(schema=dict.fromkeys(COLUMNS, pl.Utf8))
    return pl.concat(frames)


def _measure_frame(name: str, ds: xr.Dataset, measure: str) -> pl.DataFrame | None:
    da = ds[measure]
    place = next((d for d in (sdc.AREA_DIM, sdc.LSOA_DIM) if d in da.dims), None)
    time = next((d for d in ("week", "period") if d in da.dims), None)
    if place is None or time is None:
        return None  # not a cell measure (nothing of this shape is in the contract)
    cats = [d for d in da.dims if d not in (place, time)]
    da = da.transpose(place, time, *cats)
    n_place, n_time = da.shape[0], da.shape[1]
    n_cat = int(np.prod(da.shape[2:], dtype=np.int64))
    flat = np.arange(da.size, dtype=np.int64)
    place_idx, time_idx, cat_idx = flat // (n_time * n_cat), (flat // n_cat) % n_time, flat % n_cat
    status = _status_codes(ds, measure, da)
    columns = {
        "area_code": _gather(sdc.as_text(ds[place].values), place_idx),
        "area_name": _gather(
            _coord(ds, "area_name" if place == sdc.AREA_DIM else "lsoa11_name", n_place), place_idx
        ),
        "area_type": _gather(
            _coord(ds, "area_type", n_place, "lsoa" if place == sdc.LSOA_DIM else ""), place_idx
        ),
        "week": _gather(_time_labels(ds[time].values), time_idx),
        "breakdown": pl.Series([name]).gather(np.zeros(da.size, np.int64)),
        "category": _gather(_category_labels(ds, cats), cat_idx),
        "measure": pl.Series([measure]).gather(np.zeros(da.size, np.int64)),
        "value": _value_text(da, measure, sdc.is_suppressed(status)),
        "status": _gather(np.asarray(sdc.STATUS_NAMES), status.astype(np.int64)),
    }
    return pl.DataFrame(columns)


def _status_codes(ds, measure, da) -> np.ndarray:
    name = measure + sdc.STATUS_SUFFIX
    if name not in ds:
        return np.zeros(da.size, np.int8)  # public measures (population)
    return ds[name].transpose(*da.dims).values.ravel()


def _gather(labels, idx: np.ndarray) -> pl.Series:
    return pl.Series(list(labels), dtype=pl.Utf8).gather(idx)


def _coord(ds: xr.Dataset, name: str, n: int, default: str = "") -> np.ndarray:
    if name in ds.coords:
        return sdc.as_text(ds[name].values)
    return np.full(n, default, dtype=object)


def _time_labels(values: np.ndarray) -> np.ndarray:
    if np.issubdtype(values.dtype, np.datetime64):
        return np.datetime_as_string(values, unit="D")
    return sdc.as_text(values)


def _category_labels(ds: xr.Dataset, cats: list[str]) -> list[str]:
    if not cats:
        return [TOTAL_CATEGORY]
    grids = np.meshgrid(*[sdc.as_text(ds[c].values) for c in cats], indexing="ij")
    return [CATEGORY_JOIN.join(parts) for parts in zip(*(g.ravel() for g in grids), strict=True)]


def _value_text(da: xr.DataArray, measure: str, hidden: np.ndarray) -> pl.Series:
    """Values as text; suppressed (and undefined) values are null, written as empty."""
    values = da.values.ravel()
    if values.dtype.kind in sdc.TEXT_KINDS:
        text = pl.Series(sdc.as_text(values), dtype=pl.Utf8)
        text = text.replace("", None)
    else:
        numbers = pl.Series(values.astype(np.float64), nan_to_null=True)
        whole = measure in sdc.COUNT_MEASURES + sdc.SURVEY_COUNTS
        text = (numbers.cast(pl.Int64) if whole else numbers).cast(pl.Utf8)
    return pl.select(pl.when(pl.Series(hidden)).then(None).otherwise(text)).to_series()


def write_xlsx(tables: dict, path: Path) -> None:
    """One sheet per node that fits a sheet (not ``/lsoa``); numbers written as numbers."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for name, table in tables.items():
        if name in XLSX_EXCLUDED or table["frame"].height > XLSX_MAX_NODE_ROWS:
            continue
        frame = table["frame"].with_columns(number=pl.col("value").cast(pl.Float64, strict=False))
        sheet = book.create_sheet(name[:XLSX_SHEET_NAME_MAX])
        sheet.append(list(COLUMNS))
        for *cells, number in frame.iter_rows():
            cells[VALUE_COLUMN] = number if number is not None else cells[VALUE_COLUMN]
            sheet.append(cells)
        table["files"].append(path.name)
    book.save(path)


def status_counts(frame: pl.DataFrame) -> dict[str, int]:
    """Cells per status name (all four names present)."""
    counts = dict(frame.group_by("status").len().iter_rows())
    return {s: int(counts.get(s, 0)) for s in sdc.STATUS_NAMES}


def write_manifest(
    directory: Path, tree: xr.DataTree, source: str, rules, tables: dict, formats
) -> Path:
    """``manifest.json``: provenance of the cube, rules, files, per-status cell counts."""
    files = sorted({f for t in tables.values() for f in t["files"]}) + ["results.json"]
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(),
        "lds_dask_version": __version__,
        "cube": {"source": source, "attrs": dict(tree.attrs)},
        "disclosure_rules": json.loads(rules.to_json()),
        "rounding_note": sdc.ROUNDING_NOTE.format(base=rules.rounding) if rules.rounding else None,
        "formats": list(formats),
        "tables": {
            n: {
                "rows": t["frame"].height,
                "files": t["files"],
                "cells_by_status": status_counts(t["frame"]),
            }
            for n, t in tables.items()
        },
        "files": [{"name": f, "sha256": file_sha256(directory / f)} for f in files],
    }
    path = directory / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def write_checksums(directory: Path) -> None:
    """``checksums/<file>.sha256`` for every file in ``directory``."""
    target = directory / "checksums"
    target.mkdir()
    for f in sorted(p for p in directory.iterdir() if p.is_file()):
        (target / f"{f.name}.sha256").write_text(f"{file_sha256(f)}  {f.name}\n", encoding="utf-8")


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished directory to ``out`` (replacing an old export only now)."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old)


def write_results_json(directory: Path, tables: dict, rules, command: str) -> Path:
    """``results.json`` in ACRO's ``finalise_json`` schema, one output per node.

    Status is ``pass`` when nothing needed treatment and ``review`` when suppression or
    rounding was applied (as ACRO does after automatic suppression), with the exception
    text ACRO writes. ``sdc`` counts cells per check: MinimumThresholdCheck (primary,
    including zeros), PresenceOfLinkedTableCheck (secondary,
    against differencing; suppressed zeros are not told apart); ``cells`` and ``outcome`` list [row, column] / per-row outcomes
    for tables up to :data:`OUTCOME_CELL_LIMIT` rows, above which the table's own ``status``
    column is the per-cell outcome (said in ``comments``).
    """
    results = {name: _acro_record(name, t, rules, command) for name, t in tables.items()}
    doc = {"version": ACRO_VERSION, "tool": ACRO_TOOL, "results": results}
    path = directory / "results.json"
    path.write_text(json.dumps(doc, indent=4), encoding="utf-8")
    return path


def _acro_record(name: str, table: dict, rules, command: str) -> dict:
    frame: pl.DataFrame = table["frame"]
    cells = _acro_cells(frame)
    counts = status_counts(frame)
    treated = frame.height - counts["ok"]
    listed = frame.height <= OUTCOME_CELL_LIMIT
    sdc_record = {
        "summary": {k: len(v) if listed else _count_check(frame, k) for k, v in cells.items()},
        "cells": cells if listed else {k: [] for k in cells},
    }
    return {
        "uid": name,
        "status": "review" if treated else "pass",
        "type": "table",
        "properties": {
            "method": "lds_dask.export",
            "node": f"/{name}",
            "mitigation": "suppress" + ("+round" if rules.rounding else ""),
            **json.loads(rules.to_json()),
        },
        "files": [{"name": f, "sdc": sdc_record} for f in table["files"]],
        "outcome": {"value": dict(enumerate(frame["status"].to_list()))} if listed else {},
        "command": command,
        "summary": _acro_summary(counts, rules, treated),
        "timestamp": datetime.datetime.now().isoformat(),
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


def _acro_cells(frame: pl.DataFrame) -> dict[str, list]:
    if frame.height > OUTCOME_CELL_LIMIT:
        return {k: [] for k in ACRO_CHECKS}
    rows = frame.with_row_index("_row")
    return {
        k: [[int(r), VALUE_COLUMN] for r in rows.filter(mask)["_row"].to_list()]
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
        "Disclosure control applied by lds_dask.disclosure before export: primary "
        "and secondary suppression; every margin holds 0 or >= 2 suppressed cells."
    ]
    if rules.rounding:
        comments.append(sdc.ROUNDING_NOTE.format(base=rules.rounding))
    if not listed:
        comments.append(f"{rows} rows: the per-cell outcome is the table's status column.")
    return comments
