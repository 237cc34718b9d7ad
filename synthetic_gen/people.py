"""People who test (or are swabbed) in a week: new draws from cells plus repeat people.

A person keeps their LA, cell, LSOA and recorded quirks (unknown LSOA, age or sex) for the
whole chunk, so a ``person_id`` recurs across weeks. Pools live for one chunk only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from synthetic_gen.cells import Cells, RowSampler, draw_ages, sample_cells
from synthetic_gen.params import ModelParams
from synthetic_gen.world import World


@dataclass
class Persons:
    """Parallel arrays, one entry per person (or person-week)."""

    row: np.ndarray  # bundle LA row (index into cells.las)
    cell: np.ndarray
    lsoa: np.ndarray  # LSOA index, -1 = not recorded
    age: np.ndarray  # years, -1 = not recorded
    sex: np.ndarray  # 0 F, 1 M, 2 U (recorded)
    counter: np.ndarray  # uint64, the person_id before pseudonymisation

    def take(self, idx: np.ndarray) -> Persons:
        return Persons(*(getattr(self, f.name)[idx] for f in fields(self)))

    def __len__(self) -> int:
        return len(self.row)

    @staticmethod
    def concat(parts: list[Persons]) -> Persons:
        return Persons(
            *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Persons))
        )

    @staticmethod
    def empty() -> Persons:
        """No one, in the compact dtypes :func:`new_persons` uses."""
        dtypes = (np.int16, np.int16, np.int32, np.int16, np.int8, np.uint64)
        return Persons(*(np.zeros(0, dtype=d) for d in dtypes))


@dataclass
class Counter:
    """Hands out consecutive uint64 ids inside a chunk's own id space."""

    base: int
    used: int = 0

    def take(self, n: int) -> np.ndarray:
        out = np.uint64(self.base) + np.arange(self.used, self.used + n, dtype=np.uint64)
        self.used += n
        return out


def new_persons(
    rng: np.random.Generator,
    world: World,
    cells: Cells,
    weights: np.ndarray,
    n: np.ndarray,
    counter: Counter,
    model: ModelParams,
    ages: RowSampler,
) -> Persons:
    """Draw ``n[b]`` new people per bundle LA from cell ``weights``; place them in LSOAs.

    Ages come from ``ages`` (see :func:`synthetic_gen.cells.age_sampler`). The result is
    sorted by bundle LA row.
    """
    row, cell = sample_cells(rng, weights, n)
    age = draw_ages(rng, ages, row, cell, cells)
    la, dec = cells.las[row], cells.decile[cell]
    lsoa = world.decile_start[la, dec] + np.floor(
        rng.random(row.size) * world.decile_count[la, dec]
    ).astype(np.int64)
    u = rng.random((3, row.size))
    return Persons(
        row=row.astype(np.int16),
        cell=cell.astype(np.int16),
        lsoa=np.where(u[0] < model.lsoa_unknown_share, -1, lsoa).astype(np.int32),
        age=np.where(u[1] < model.age_unknown_share, -1, age).astype(np.int16),
        sex=np.where(u[2] < model.sex_unknown_share, 2, cells.sex[cell]).astype(np.int8),
        counter=counter.take(row.size),
    )


class Pool:
    """People seen earlier in a chunk, kept for repeat testing.

    Stored as weekly blocks appended to growable arrays, each block sorted by bundle LA
    row, with a per-block count per row. Drawing repeat people then costs O(draws), not
    O(pool): the pool is never re-concatenated or re-sorted (that was quadratic in weeks).
    """

    def __init__(self, n_rows: int):
        self.people, self.size = Persons.empty(), 0
        self.starts: list[int] = []  # first index of each block
        self.counts = np.zeros((0, n_rows), dtype=np.int64)  # (blocks, rows)

    def add(self, fresh: Persons) -> None:
        """Append this week's new people as one block (they must be sorted by row)."""
        if np.any(np.diff(fresh.row) < 0):
            fresh = fresh.take(np.argsort(fresh.row, kind="stable"))
        m = len(fresh)
        if self.size + m > len(self.people):
            cap = max(2 * len(self.people), self.size + m, 1024)
            self.people = _grown(self.people, self.size, cap)
        for f in fields(Persons):
            getattr(self.people, f.name)[self.size : self.size + m] = getattr(fresh, f.name)
        self.starts.append(self.size)
        self.size += m
        row_counts = np.bincount(fresh.row, minlength=self.counts.shape[1])[None, :]
        self.counts = np.concatenate([self.counts, row_counts])

    def available(self) -> np.ndarray:
        """People per row."""
        return self.counts.sum(axis=0)

    def pick(self, rng: np.random.Generator, k: np.ndarray) -> Persons:
        """About ``k[r]`` distinct random people of each row ``r``.

        ``k[r]`` draws with replacement, uniform over the row's people, repeats dropped
        (as :func:`synthetic_gen.cells.pick_without_replacement`).
        """
        size = self.available()
        k = np.minimum(k, size)
        g = np.repeat(np.arange(len(k)), k)
        j = np.floor(rng.random(g.size) * size[g]).astype(np.int64)  # rank within row
        cum = np.cumsum(self.counts, axis=0)  # (blocks, rows): people up to block end
        span = size.max(initial=0) + 1
        keys = (cum.T + span * np.arange(len(k))[:, None]).ravel()
        block = np.searchsorted(keys, j + span * g, side="right") - g * len(self.counts)
        before = cum[block, g] - self.counts[block, g]  # row's people in earlier blocks
        seg = np.cumsum(self.counts, axis=1) - self.counts  # row offset inside each block
        idx = np.asarray(self.starts, dtype=np.int64)[block] + seg[block, g] + j - before
        return self.people.take(np.unique(idx))


def _grown(people: Persons, used: int, cap: int) -> Persons:
    out = []
    for f in fields(Persons):
        old = getattr(people, f.name)
        new = np.empty(cap, dtype=old.dtype)
        new[:used] = old[:used]
        out.append(new)
    return Persons(*out)


def draw_week(
    rng: np.random.Generator, pool: Pool, n: np.ndarray, repeat_share: float, make_new
) -> Persons:
    """This week's ``n[b]`` people per LA: a share repeat from ``pool``, the rest new.

    ``make_new(counts)`` draws new people, who join the pool. Returns the week's people
    (repeats first, then new ones, by row).
    """
    repeat = pool.pick(rng, np.rint(repeat_share * n).astype(np.int64))
    fresh = make_new(n - np.bincount(repeat.row, minlength=len(n)))
    pool.add(fresh)
    return Persons.concat([repeat, fresh])
