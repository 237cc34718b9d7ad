"""Seeding and pseudonymous identifiers, both stable across processes and runs.

Python's ``hash()`` is salted per process, so chunk seeds come from :func:`stable_ints`
(a blake2b digest). Identifiers are a keyed bijection of a 64-bit counter (splitmix64's
finaliser), so they are opaque yet unique by construction, never by luck.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pyarrow as pa

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8).astype(np.uint32)
_V = np.arange(1 << 16)
# 16-bit value -> its four hex digits as one little-endian uint32 (first digit lowest)
_HEX4 = (
    _DIGITS[_V >> 12]
    | _DIGITS[(_V >> 8) & 15] << 8
    | _DIGITS[(_V >> 4) & 15] << 16
    | _DIGITS[_V & 15] << 24
).astype("<u4")


def stable_ints(*key: object) -> tuple[int, ...]:
    """Four 32-bit ints from a digest of ``key``'s repr, for ``SeedSequence(spawn_key=...)``."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """The generator of one named stream (a chunk, or a world-building step)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=stable_ints(*key)))


def mix64(x: np.ndarray, key: int) -> np.ndarray:
    """A keyed bijection on uint64 (add key, then splitmix64's finaliser)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(key % 2**64)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def hex_array(counter: np.ndarray, key: int | None) -> pa.StringArray:
    """16-character lowercase hex strings of ``mix64(counter, key)``: unique iff counters are.

    ``key=None`` formats ``counter`` as already mixed. String order equals numeric order
    of the mixed values (fixed width, big-endian). Vectorised: one lookup per
    byte pair (a 256 KiB table) straight into an Arrow string buffer, no per-row Python.
    """
    n = len(counter)
    mixed = counter.astype(np.uint64) if key is None else mix64(counter, key)
    pairs = mixed.astype(">u8").view(">u2").astype(np.intp)  # most significant first
    text = np.take(_HEX4, pairs)  # four ASCII digits per byte pair
    offsets = np.arange(0, 16 * (n + 1), 16, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


def hex_ids(counter: np.ndarray, key: int | None) -> pl.Series:
    """:func:`hex_array` as a polars Series."""
    return pl.Series(pl.from_arrow(hex_array(counter, key)))


def id_key(seed: int, kind: str) -> int:
    """The bijection key of one identifier kind (test, person, respondent) for a seed."""
    return int.from_bytes(
        hashlib.blake2b(f"{seed}:{kind}".encode(), digest_size=8).digest(), "little"
    )
