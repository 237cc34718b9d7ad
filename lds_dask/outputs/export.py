"""Export of disclosure-controlled aggregates: the only code that writes outward files.

``export_cube`` reads a cube (a path, read into memory once, or a DataTree), runs
:func:`lds_dask.sdc.rules.safe_view`, checks the result once more, and writes into ``DIR``:

- ``<node>.csv`` / ``<node>.parquet``: one tidy long table per cube node, columns
  :data:`COLUMNS`. ``value`` is text (numbers in shortest round-trip form, labels as they
  are) because significance labels share the column with numbers; a suppressed value is
  empty, never the number. An unsuppressed value may also be empty when the statistic is
  undefined (a DSR under 10 events, a population with no denominator).
- ``tables.xlsx`` (``--format xlsx``): one sheet per node, numbers as numbers. The ``/lsoa``
  node, and any node longer than one sheet (:data:`XLSX_MAX_NODE_ROWS`; of a 52-week
  national cube only ``/total``, ``/sex`` and ``/inequality`` fit), go to csv/parquet only:
  the manifest lists each node's files. openpyxl writes ~10^4-10^5 rows a second.
- ``results.json``: the ACRO ``finalise_json`` schema (:mod:`lds_dask.outputs.acro`), one output per
  node; ``manifest.json``: cube provenance (source path, root attrs), rules, counts of cells
  per status, files with their sha256, code version, export time;
  ``checksums/<file>.sha256`` (``sha256sum -c`` format, run from ``DIR``).

Determinism (so a rerun can be compared by hashes): the same cube and rules give
byte-identical ``<node>.csv|parquet`` files (``tables.xlsx`` holds openpyxl's own creation
time, so compare its sheets, not its hash); in ``results.json`` only the ``timestamp``
fields vary; in ``manifest.json`` only ``created``, ``cube.source`` (the absolute path of
the cube read) and the sha256 listed for ``results.json``; so do the ``checksums/`` of those
two files. Set ``SOURCE_DATE_EPOCH`` (seconds) to fix the time too: then only
``cube.source`` can differ.

Before anything is written, every category label and area code of the cube must be a
declared category or a reference code (:func:`lds_dask.sdc.labels.check_labels`), and
``DIR`` must be safe to write (:mod:`lds_dask.runtime.publish`): not the cube, inside it or
containing it, and, when it exists, an export written before (its ``.lds-dask-output.json``
says so) that ``overwrite`` allows replacing. Everything is written into a hidden temporary
sibling that is renamed into place at the end, so an interrupted export never leaves a
``DIR`` that looks complete, and the next export removes what it left.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import xarray as xr

from lds_dask import __version__
from lds_dask.outputs import acro
from lds_dask.runtime.errors import BadInputError
from lds_dask.runtime.hashing import file_sha256
from lds_dask.runtime.publish import PublishError, check_target, publishing
from lds_dask.sdc import rules as sdc
from lds_dask.sdc.labels import check_labels

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
KEY_COLUMNS = COLUMNS[:6]
FORMATS = ("csv", "parquet", "xlsx")
XLSX_NAME, XLSX_MAX_ROWS, XLSX_EXCLUDED = "tables.xlsx", 1_048_575, ("lsoa",)
XLSX_SHEET_NAME_MAX = 31
XLSX_MAX_NODE_ROWS = XLSX_MAX_ROWS  # bigger nodes go to csv/parquet only (one sheet each)
TOTAL_CATEGORY, CATEGORY_JOIN = "all", "|"
MANIFEST_VERSION = 1
VALUE_COLUMN = COLUMNS.index("value")
HASH_THREADS = 4  # hashlib releases the GIL: hash the written files in parallel


class ExportError(BadInputError, ValueError):
    """An export that cannot be written (bad input, existing output, failed check)."""


def export_cube(
    cube: str | Path | xr.DataTree,
    out: str | Path,
    rules: sdc.DisclosureRules,
    formats: Sequence[str] = ("csv",),
    overwrite: bool = False,
    command: str = "lds_dask.outputs.export.export_cube",
    safe: xr.DataTree | None = None,
) -> Path:
    """Write the disclosure-controlled view of ``cube`` (a path or a DataTree) to directory
    ``out``; returns it. A path is opened and read into memory once.

    ``safe``: that view, when the caller has already computed it under ``rules`` (a refresh
    has); every node is still checked against its recorded rules before it is written.
    ``overwrite`` replaces an earlier export only (see the module docstring).
    """
    out = Path(out)
    formats = _check_formats(formats)
    reads = [] if isinstance(cube, xr.DataTree) else [("cube", Path(cube))]
    try:
        check_target(out, "export", overwrite, reads)
    except PublishError as exc:
        raise ExportError(str(exc)) from None
    tree, source = open_tree(cube)
    check_labels(tree)
    safe = sdc.safe_view(tree, rules) if safe is None else safe
    when = acro.export_time()
    with publishing(out, "export", overwrite, reads) as tmp:
        tables = write_tables(safe, tmp, formats)
        acro.write_results_json(tmp, tables, rules, command, when, VALUE_COLUMN)
        hashes = hash_files(tmp)
        write_manifest(tmp, tree, source, rules, tables, formats, hashes, when)
        write_checksums(tmp, hashes)
    return out


def _check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ExportError(
            f"unknown format(s) {', '.join(bad) or '(none)'}: use {', '.join(FORMATS)}"
        )
    return tuple(dict.fromkeys(formats))


def open_tree(cube: str | Path | xr.DataTree) -> tuple[xr.DataTree, str]:
    """The cube read into memory (once), and where it came from (its absolute path)."""
    if isinstance(cube, xr.DataTree):
        return cube.compute(), "<in-memory DataTree>"
    path = Path(cube)
    if not path.exists():
        raise ExportError(f"{path}: no such cube")
    from lds_dask.cube.build import open_cube

    try:
        tree = open_cube(path).compute()
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
    """A safe node as a tidy long table (:data:`COLUMNS`), one row per cell and measure.

    Column operations only: the coordinate columns of each dim layout are built once (index
    arrays gathered from the labels) and shared by the measures; values and statuses are
    whole arrays."""
    keys: dict[tuple, pl.DataFrame] = {}
    frames = []
    for measure in [m for m in ds.data_vars if not m.endswith(sdc.STATUS_SUFFIX)]:
        layout = _layout(ds[measure])
        if layout is None:
            continue  # not a cell measure (nothing of this shape is in the contract)
        if layout not in keys:
            keys[layout] = _key_frame(name, ds, *layout)
        frames.append(_measure_frame(ds, measure, layout, keys[layout]))
    if not frames:
        return pl.DataFrame(schema=dict.fromkeys(COLUMNS, pl.Utf8))
    return pl.concat(frames, rechunk=True)


def _layout(da: xr.DataArray) -> tuple | None:
    """(place dim, time dim, category dims) of a cell measure, or None."""
    place = next((d for d in (sdc.AREA_DIM, sdc.LSOA_DIM) if d in da.dims), None)
    time = next((d for d in ("week", "period") if d in da.dims), None)
    if place is None or time is None:
        return None
    return place, time, tuple(d for d in da.dims if d not in (place, time))


def _key_frame(name: str, ds: xr.Dataset, place: str, time: str, cats: tuple) -> pl.DataFrame:
    """The coordinate columns, rows in (place, time, *categories) C order."""
    n_place, n_time = ds.sizes[place], ds.sizes[time]
    n_cat = int(np.prod([ds.sizes[c] for c in cats], dtype=np.int64))
    place_idx = np.repeat(np.arange(n_place), n_time * n_cat)
    time_idx = np.tile(np.repeat(np.arange(n_time), n_cat), n_place)
    cat_idx = np.tile(np.arange(n_cat), n_place * n_time)
    is_lsoa = place == sdc.LSOA_DIM
    names = _coord(ds, "lsoa11_name" if is_lsoa else "area_name", place)
    kinds = _coord(ds, "area_type", place, "lsoa" if is_lsoa else "")
    return pl.DataFrame(
        {
            "area_code": _gather(sdc.as_text(ds[place].values), place_idx),
            "area_name": _gather(names, place_idx),
            "area_type": _gather(kinds, place_idx),
            "week": _gather(_time_labels(ds[time].values), time_idx),
            "breakdown": pl.Series([name]).gather(np.zeros(place_idx.size, np.int64)),
            "category": _gather(_category_labels(ds, list(cats)), cat_idx),
        }
    )


def _measure_frame(ds, measure: str, layout: tuple, key: pl.DataFrame) -> pl.DataFrame:
    place, time, cats = layout
    da = ds[measure].transpose(place, time, *cats)
    status = _status_codes(ds, measure, da)
    return key.with_columns(
        measure=pl.lit(measure, pl.Utf8),
        value=_value_text(da, measure, sdc.is_suppressed(status)),
        status=pl.Series(sdc.STATUS_NAMES, dtype=pl.Utf8).gather(status.astype(np.int64)),
    ).select(COLUMNS)


def _status_codes(ds, measure, da) -> np.ndarray:
    name = measure + sdc.STATUS_SUFFIX
    if name not in ds:
        return np.zeros(da.size, np.int8)  # public measures (population)
    return ds[name].transpose(*da.dims).values.ravel()


def _gather(labels, idx: np.ndarray) -> pl.Series:
    return pl.Series(list(labels), dtype=pl.Utf8).gather(idx)


def _coord(ds: xr.Dataset, name: str, place: str, default: str = "") -> np.ndarray:
    """Labels of ``place`` from coordinate ``name`` (not one inherited along another dim)."""
    if name in ds.coords and ds[name].dims == (place,):
        return sdc.as_text(ds[name].values)
    return np.full(ds.sizes[place], default, dtype=object)


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
        text = np.where(hidden, "", sdc.as_text(values))
        return pl.Series(text, dtype=pl.Utf8).replace("", None)
    numbers = pl.Series(np.where(hidden, np.nan, values.astype(np.float64)), nan_to_null=True)
    whole = measure in sdc.COUNT_MEASURES + sdc.SURVEY_COUNTS
    return (numbers.cast(pl.Int64) if whole else numbers).cast(pl.Utf8)


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


def hash_files(directory: Path) -> dict[str, str]:
    """sha256 of every file in ``directory`` (not recursive), each read once, in parallel."""
    files = sorted(p for p in directory.iterdir() if p.is_file())
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        return dict(zip((f.name for f in files), pool.map(file_sha256, files), strict=True))


def write_manifest(
    directory: Path, tree: xr.DataTree, source: str, rules, tables, formats, hashes, when
) -> Path:
    """``manifest.json``: provenance of the cube, rules, files, per-status cell counts.

    ``created`` (the export time) and ``cube.source`` (where the cube was read) are the only
    fields that differ between two exports of the same cube under the same rules."""
    files = sorted({f for t in tables.values() for f in t["files"]}) + [acro.RESULTS_NAME]
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "created": when.isoformat(),
        "lds_dask_version": __version__,
        "cube": {"source": source, "attrs": dict(tree.attrs)},
        "disclosure_rules": json.loads(rules.to_json()),
        "rounding_note": sdc.ROUNDING_NOTE.format(base=rules.rounding) if rules.rounding else None,
        "formats": list(formats),
        "tables": {
            n: {
                "rows": t["frame"].height,
                "files": t["files"],
                "cells_by_status": acro.status_counts(t["frame"]),
            }
            for n, t in tables.items()
        },
        "files": [{"name": f, "sha256": hashes[f]} for f in files],
    }
    path = directory / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    hashes[path.name] = file_sha256(path)
    return path


def write_checksums(directory: Path, hashes: dict[str, str]) -> None:
    """``checksums/<file>.sha256`` for every file in ``directory`` (hashes computed once)."""
    target = directory / "checksums"
    target.mkdir()
    for name in sorted(p.name for p in directory.iterdir() if p.is_file()):
        digest = hashes.get(name) or file_sha256(directory / name)
        (target / f"{name}.sha256").write_text(f"{digest}  {name}\n", encoding="utf-8")
