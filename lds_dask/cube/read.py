"""Opening the cube fast: a lazy reader of the zarr v3 layout ``cube_zarr`` writes.

zarr-python hands every array read to its event-loop thread, which costs ~1-3 ms a read
here: opening a cube through ``xr.open_datatree`` (~80 reads) and selecting one LA's full
profile (one read per variable, ~130) took ~400 ms. This module reads the consolidated
metadata (the root ``zarr.json``) once and builds each node's Dataset itself, the way
xarray's zarr backend does (same CF decoding, lazily indexed, cached variables). A variable
is a :class:`ChunkArray` when it is a single chunk, or a single shard of one inner chunk per
index of its first dim, with codecs ``bytes`` or ``vlen-utf8`` then optionally ``zstd``:
every cube variable, and what xarray writes by default for small arrays. Its one read
primitive, :func:`read_ranges`, reads byte ranges of one file, so selecting one LA reads the
shard index (checked against its CRC32C) and that LA's inner chunk. Other arrays are read
by zarr-python through xarray's own wrapper.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_crc32c
import numcodecs
import numpy as np
import xarray as xr
import zarr
from xarray.backends import BackendArray
from xarray.backends.zarr import FillValueCoder, ZarrArrayWrapper
from xarray.conventions import decode_cf_variables
from xarray.core import indexing

from lds_dask.cube.write import EXPECTED_INDEX, chunk_key, quiet_zarr
from lds_dask.runtime.errors import BadInputError

NUMERIC = {f"{k}{b}" for k in ("int", "uint") for b in (8, 16, 32, 64)}
NUMERIC |= {"bool", "float16", "float32", "float64"}
MISSING = 2**64 - 1  # shard index entry of an inner chunk that was never written
ZSTD = numcodecs.Zstd()
VLEN_UTF8 = numcodecs.VLenUTF8()


class CubeError(BadInputError, ValueError):
    """A user error building or opening a cube (bad config, missing store or cube, a cube
    in a layout this version cannot read). Defined here so the reader raises it too;
    ``lds_dask.cube.build.CubeError`` is the same class."""


def incompatible(path: Path, what: str) -> CubeError:
    """The one-line error for a store this version cannot open."""
    return CubeError(f"{path}: cannot open this cube: {what}; rebuild it with `lds-dask cube`")


@dataclass(frozen=True)
class Layout:
    """Where one array's bytes are and how to decode them.

    ``file`` holds the single chunk or shard. ``codecs``: the chunk's (or inner chunk's)
    codecs. ``sharded``: one inner chunk per index of the first dim, the shard index of
    (offset, nbytes) uint64 pairs + CRC32C at the file's end or start (``index_at_end``).
    """

    file: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    fill_value: Any
    codecs: tuple[dict, ...]
    sharded: bool = False
    index_at_end: bool = True


def open_tree(path: Path, shared: tuple[str, ...] = ()) -> xr.DataTree:
    """The store at ``path`` as a lazy DataTree, as ``xr.open_datatree(engine="zarr")``
    opens it. The root's coordinates named in ``shared`` are read once and set, in memory,
    on the root and on each child node (in place of the node's own copy, never read)."""
    attrs, arrays = read_metadata(path)
    groups = {group: open_group(path, group, attrs[group], arrays[group]) for group in attrs}
    root = groups[""]
    coords = {c: root[c].load() for c in shared if c in root.coords}
    if coords:
        groups = {g: ds.assign_coords(coords) if "/" not in g else ds for g, ds in groups.items()}
    return xr.DataTree.from_dict({"/" + group: ds for group, ds in groups.items()})


def read_metadata(path: Path) -> tuple[dict[str, dict], dict[str, dict[str, dict]]]:
    """Group attrs and array metadata, keyed by group path ("" is the root)."""
    try:
        root = json.loads((path / "zarr.json").read_bytes())
    except FileNotFoundError:
        raise incompatible(path, "no zarr.json (not a zarr v3 store)") from None
    if root.get("zarr_format") != 3 or root.get("node_type") != "group":
        raise incompatible(path, "zarr.json is not a zarr v3 group")
    consolidated = (root.get("consolidated_metadata") or {}).get("metadata")
    if consolidated is None:
        raise incompatible(path, "no consolidated metadata in zarr.json")
    attrs = {"": root.get("attributes", {})}
    attrs |= {k: m.get("attributes", {}) for k, m in consolidated.items() if _is_group(m)}
    arrays: dict[str, dict[str, dict]] = {group: {} for group in attrs}
    for key, meta in consolidated.items():
        if not _is_group(meta):
            group, _, name = key.rpartition("/")
            arrays[group][name] = meta
    return attrs, arrays


def _is_group(meta: dict) -> bool:
    return meta.get("node_type") == "group"


def open_group(path: Path, group: str, attrs: dict, arrays: dict[str, dict]) -> xr.Dataset:
    """One group as xarray's zarr backend opens it: CF-decoded, lazily indexed, cached."""
    prefix = f"{group}/" if group else ""
    raw = {name: open_variable(path, prefix + name, meta) for name, meta in arrays.items()}
    attrs = {k: v for k, v in attrs.items() if not k.lower().startswith("_nc")}
    variables, attrs, coord_names = decode_cf_variables(raw, attrs)
    coords, data_vars = {}, {}
    for name, var in variables.items():
        index = var.dims == (name,)
        if not index:  # as xarray's backends: copied on write, cached once loaded in full
            var.data = indexing.MemoryCachedArray(indexing.CopyOnWriteArray(var._data))
        (coords if index or name in coord_names else data_vars)[name] = var
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def open_variable(path: Path, key: str, meta: dict) -> xr.Variable:
    """A lazily indexed variable; reads nothing."""
    shape = tuple(meta["shape"])
    dims = tuple(meta.get("dimension_names") or ())
    if len(dims) != len(shape):
        raise incompatible(path, f"array {key} has no dimension_names")
    layout = array_layout(path / key, meta)
    array = ChunkArray(layout) if layout else zarr_array(path, key)
    attrs = dict(meta.get("attributes", {}))
    if "_FillValue" in attrs:
        attrs["_FillValue"] = FillValueCoder.decode(attrs["_FillValue"], array.dtype)
    encoding = variable_encoding(meta, dims, array.dtype)
    encoding["fill_value"] = layout.fill_value if layout else array.get_array().fill_value
    return xr.Variable(dims, indexing.LazilyIndexedArray(array), attrs, encoding)


def variable_encoding(meta: dict, dims: tuple[str, ...], dtype: np.dtype) -> dict:
    """The chunking part of what xarray's zarr backend records (codecs are left out)."""
    outer = tuple(meta["chunk_grid"].get("configuration", {}).get("chunk_shape", ()))
    codec = meta["codecs"][0]
    sharded = codec["name"] == "sharding_indexed"
    chunks = tuple(codec["configuration"]["chunk_shape"]) if sharded else outer
    encoding = {"chunks": chunks, "preferred_chunks": dict(zip(dims, chunks, strict=False))}
    encoding["shards"] = outer if sharded else None
    if dtype.kind == "T":
        encoding["dtype"] = dtype
    return encoding


def array_layout(array_dir: Path, meta: dict) -> Layout | None:
    """The array's :class:`Layout`, or None when this module does not decode it."""
    shape = tuple(meta["shape"])
    dtype = parse_dtype(meta["data_type"])
    grid = meta.get("chunk_grid", {})
    if dtype is None or 0 in shape or grid.get("name") != "regular":
        return None
    if tuple(grid["configuration"]["chunk_shape"]) != shape:
        return None
    codecs, sharded, at_end = meta["codecs"], False, True
    if codecs[0]["name"] == "sharding_indexed" and len(codecs) == 1:
        conf = codecs[0]["configuration"]
        if conf["index_codecs"] != EXPECTED_INDEX or conf["chunk_shape"] != [1, *shape[1:]]:
            return None
        codecs, sharded = conf["codecs"], True
        at_end = conf.get("index_location", "end") == "end"
    try:
        fill = dtype.type(meta["fill_value"]) if dtype.kind != "T" else str(meta["fill_value"])
    except (TypeError, ValueError):  # e.g. a hex float fill value: left to zarr
        return None
    if not decodable(codecs, dtype):
        return None
    file = array_dir / chunk_key(meta, len(shape))
    return Layout(file, shape, dtype, fill, tuple(codecs), sharded, at_end)


def parse_dtype(data_type: Any) -> np.dtype | None:
    """The numpy dtype of a zarr v3 core data type this module decodes, else None."""
    if data_type == "string":
        return np.dtypes.StringDType()
    return np.dtype(data_type) if isinstance(data_type, str) and data_type in NUMERIC else None


def decodable(codecs: list[dict], dtype: np.dtype) -> bool:
    """``bytes`` (numbers) or ``vlen-utf8`` (strings), then at most ``zstd``."""
    serializer = "vlen-utf8" if dtype.kind == "T" else "bytes"
    return codecs[0]["name"] == serializer and all(c["name"] == "zstd" for c in codecs[1:])


def zarr_array(path: Path, key: str) -> BackendArray:
    """Anything else, read by zarr-python (opened now: a few ms)."""
    with quiet_zarr():
        return ZarrArrayWrapper(zarr.open_array(str(path), path=key, mode="r", zarr_format=3))


class ChunkArray(BackendArray):
    """An array in a :class:`Layout`, read with :func:`read_ranges` only."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.shape = layout.shape
        self.dtype = layout.dtype
        self._index: np.ndarray | None = None

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._getitem
        )

    def _getitem(self, key: tuple) -> np.ndarray:
        if not self.layout.sharded:
            return np.array(self._read_chunk()[key], dtype=self.dtype)
        rows = range(self.shape[0])[key[0]]
        if isinstance(rows, int):
            return np.array(self._read_rows([rows])[(0, *key[1:])], dtype=self.dtype)
        return np.array(self._read_rows(list(rows))[(slice(None), *key[1:])], dtype=self.dtype)

    def _read_chunk(self) -> np.ndarray:
        try:
            (buf,) = read_ranges(self.layout.file, [(0, None)])
        except FileNotFoundError:  # zarr leaves out chunks holding only the fill value
            return np.full(self.shape, self.layout.fill_value, dtype=self.dtype)
        return decode_chunk(buf, self.layout, self.shape)

    def _read_rows(self, rows: list[int]) -> np.ndarray:
        """Rows of the first dim, one inner chunk each."""
        row_shape = self.shape[1:]
        out = np.full((len(rows), *row_shape), self.layout.fill_value, dtype=self.dtype)
        index = self.shard_index()
        written = [i for i, r in enumerate(rows) if index[r, 0] != MISSING]
        ranges = [(int(index[rows[i], 0]), int(index[rows[i], 1])) for i in written]
        for i, buf in zip(written, read_ranges(self.layout.file, ranges), strict=True):
            out[i] = decode_chunk(buf, self.layout, row_shape)
        return out

    def shard_index(self) -> np.ndarray:
        """(offset, nbytes) of each inner chunk, read once and checked against its CRC32C."""
        if self._index is None:
            self._index = read_shard_index(self.layout)
        return self._index


def read_shard_index(layout: Layout) -> np.ndarray:
    """The shard's index as an (inner chunks, 2) uint64 array; all MISSING if no shard."""
    n = layout.shape[0]
    size = 16 * n + 4
    try:
        (buf,) = read_ranges(layout.file, [(-size if layout.index_at_end else 0, size)])
    except FileNotFoundError:
        return np.full((n, 2), MISSING, dtype=np.uint64)
    buf = bytes(buf)
    if len(buf) != size or google_crc32c.value(buf[:-4]) != int.from_bytes(buf[-4:], "little"):
        raise CubeError(f"{layout.file}: corrupt shard index (checksum mismatch)")
    return np.frombuffer(buf[:-4], dtype="<u8").reshape(n, 2)


def decode_chunk(buf: bytes | memoryview, layout: Layout, shape: tuple[int, ...]) -> np.ndarray:
    """One (inner) chunk's bytes as an array of ``shape``: zstd, then bytes or vlen-utf8."""
    for _ in layout.codecs[1:]:
        buf = ZSTD.decode(buf)
    if layout.dtype.kind == "T":
        return VLEN_UTF8.decode(buf).astype(layout.dtype).reshape(shape)
    endian = layout.codecs[0].get("configuration", {}).get("endian", "little")
    stored = layout.dtype.newbyteorder("<" if endian == "little" else ">")
    return np.frombuffer(buf, dtype=stored).reshape(shape).astype(layout.dtype, copy=False)


def read_ranges(file: Path, ranges: list[tuple[int, int | None]]) -> list[memoryview]:
    """The bytes of each (offset, nbytes) range of ``file``, in one open.

    A negative offset counts from the end; ``nbytes=None`` reads to the end. Ranges that
    follow each other in the file are read in one call.
    """
    out: list[memoryview] = []
    if not ranges:  # e.g. only inner chunks zarr left out: the shard may not exist
        return out
    with open(file, "rb", buffering=0) as f:
        for start, stop, group in _runs(ranges):
            try:
                f.seek(start, 2 if start < 0 else 0)
            except OSError:  # before the start of the file
                raise CubeError(f"{file}: truncated (shorter than its layout says)") from None
            data = memoryview(f.readall() if stop is None else f.read(stop - start))
            if stop is not None and len(data) != stop - start:
                raise CubeError(f"{file}: truncated (shorter than its layout says)")
            out += [data[o - start : None if n is None else o - start + n] for o, n in group]
    return out


def _runs(ranges: list[tuple[int, int | None]]) -> list[list]:
    """(start, stop, ranges) of consecutive ranges that touch, in the order given."""
    runs: list[list] = []
    for offset, nbytes in ranges:
        end = None if nbytes is None else offset + nbytes
        if runs and runs[-1][0] >= 0 and runs[-1][1] == offset:
            runs[-1][1] = end
            runs[-1][2].append((offset, nbytes))
        else:
            runs.append([offset, end, [(offset, nbytes)]])
    return runs
