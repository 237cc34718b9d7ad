"""Writing the cube to zarr v3, one inner chunk per area, fast.

Every area variable is one zarr *shard* (one file) holding one uncompressed inner chunk
per area, so reading one LA touches only that LA's byte range, and the store has one
file per variable instead of one per area. zarr-python encodes inner chunks one by one
(~0.4 ms each; a cube has ~50,000), so for numeric variables we let xarray write the
metadata and write each shard's bytes directly, following the zarr v3
``sharding_indexed`` spec: the inner chunks' raw little-endian bytes in C order (an
inner chunk of one area is exactly one row of the array), then the index of
(offset, nbytes) uint64 pairs, then its CRC32C. ``write_cube`` checks the codecs zarr
recorded before doing so and lets zarr write anything else. ``cube_read`` reads this layout
back with plain file reads (and anything else through zarr).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import google_crc32c
import numpy as np
import xarray as xr
import zarr

from lds_dask.runtime.tasks import TaskRunner

EXPECTED_INNER = [{"name": "bytes", "configuration": {"endian": "little"}}]
EXPECTED_INDEX = [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]


def write_cube(tree: xr.DataTree, out: Path, runner: TaskRunner | None = None) -> None:
    """Write the tree (root first, then each node, in parallel on the runner's workers),
    then consolidate the metadata that ``open_cube`` reads."""
    runner = runner or TaskRunner()
    root = tree.to_dataset(inherit=False)
    with quiet_zarr():
        root.to_zarr(out, mode="w", encoding=node_encoding(root), consolidated=False)
    nodes = [(name, child.to_dataset(inherit=False)) for name, child in tree.children.items()]
    runner.gather(runner.map(write_node, runner.scatter(nodes), out, label="cube: write"))
    with quiet_zarr():
        zarr.consolidate_metadata(str(out))


def write_node(item: tuple[str, xr.Dataset], out: Path) -> str:
    """Write one node into group ``name``: metadata and small arrays by xarray, the
    sharded numeric area variables by :func:`write_shard`."""
    name, ds = item
    fast = [v for v, var in ds.data_vars.items() if is_fast(var)]
    # metadata only for these; a given token spares dask hashing the data
    lazy = ds.assign({v: ds[v].chunk(-1, token=f"{name}/{v}") for v in fast})
    with quiet_zarr():
        lazy.to_zarr(
            out, group=name, mode="w", encoding=node_encoding(ds), consolidated=False, compute=False
        )
    for v in fast:
        write_shard(Path(out) / name / v, ds[v].values)
    return name


def is_fast(var: xr.DataArray) -> bool:
    """Numeric variables with an area dim first are written as raw shards."""
    return var.dims[:1] == ("area",) and var.dtype.kind in "iuf"


def node_encoding(ds: xr.Dataset) -> dict:
    """Area variables: one shard, inner chunks of one area, numbers uncompressed."""
    enc = {}
    for name, var in ds.data_vars.items():
        full = tuple(var.shape)
        if "area" in var.dims:
            inner = tuple(1 if d == "area" else n for d, n in var.sizes.items())
            enc[name] = {"chunks": inner, "shards": full}
            if is_fast(var):
                enc[name]["compressors"] = None
        else:
            enc[name] = {"chunks": full}
    return enc


def write_shard(array_dir: Path, values: np.ndarray) -> None:
    """Write the single shard of a (area, ...) array, inner chunks of one area."""
    meta = json.loads((array_dir / "zarr.json").read_text())
    codec = meta["codecs"][0]
    conf = codec.get("configuration", {})
    ok = (
        codec["name"] == "sharding_indexed"
        and len(meta["codecs"]) == 1
        and conf.get("codecs") == EXPECTED_INNER
        and conf.get("index_codecs") == EXPECTED_INDEX
        and conf.get("index_location", "end") == "end"
        and conf["chunk_shape"][1:] == list(values.shape[1:])
        and conf["chunk_shape"][0] == 1
    )
    if not ok:  # unexpected layout: let zarr encode it
        zarr.open_array(str(array_dir), mode="r+")[...] = values
        return
    data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
    n_area = data.shape[0]
    row = data[0].nbytes if n_area else 0
    index = np.zeros((n_area, *([1] * (data.ndim - 1)), 2), dtype="<u8")
    index[..., 0] = (np.arange(n_area) * row).reshape(index.shape[:-1])
    index[..., 1] = row
    index_bytes = index.tobytes()
    crc = np.uint32(google_crc32c.value(index_bytes)).astype("<u4").tobytes()
    key = chunk_key(meta, data.ndim)
    path = array_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes() + index_bytes + crc)


def chunk_key(meta: dict, ndim: int) -> str:
    """The key of chunk (0, ..., 0) under the array's chunk key encoding."""
    enc = meta.get("chunk_key_encoding", {"name": "default"})
    sep = enc.get("configuration", {}).get("separator", "/")
    if enc["name"] == "v2":
        return sep.join(["0"] * ndim)
    return sep.join(["c"] + ["0"] * ndim)


@contextlib.contextmanager
def quiet_zarr():
    """Silence zarr's notices about consolidated metadata (it is what open_cube reads)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        yield
