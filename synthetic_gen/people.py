"""People who test (or are swabbed) in a week: new draws from cells plus repeat people.

A person keeps their LA, cell, LSOA and recorded quirks (unknown LSOA, age or sex) for the
whole chunk, so a ``person_id`` recurs across weeks. Pools live for one chunk only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from synthetic_gen.cells import Cells, draw_ages, pick_without_replacement, sample_cells
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
        z = np.zeros(0, dtype=np.int64)
        return Persons(z, z, z, z, z, z.astype(np.uint64))


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
    band_pop: np.ndarray | None = None,
) -> Persons:
    """Draw ``n[b]`` new people per bundle LA from cell ``weights``; place them in LSOAs.

    Ages come from ``band_pop`` (default: the whole pyramid of each band).
    """
    row, cell = sample_cells(rng, weights, n)
    age = draw_ages(rng, cells.band_pop if band_pop is None else band_pop, row, cell, cells)
    la, dec = cells.las[row], cells.decile[cell]
    lsoa = world.decile_start[la, dec] + np.floor(
        rng.random(row.size) * world.decile_count[la, dec]
    ).astype(np.int64)
    u = rng.random((3, row.size))
    return Persons(
        row=row,
        cell=cell,
        lsoa=np.where(u[0] < model.lsoa_unknown_share, -1, lsoa),
        age=np.where(u[1] < model.age_unknown_share, -1, age),
        sex=np.where(u[2] < model.sex_unknown_share, 2, cells.sex[cell]),
        counter=counter.take(row.size),
    )


def draw_week(
    rng: np.random.Generator, pool: Persons, n: np.ndarray, repeat_share: float, make_new
) -> tuple[Persons, Persons]:
    """This week's ``n[b]`` people per LA: a share repeat from ``pool``, the rest new.

    ``make_new(counts)`` draws new people. Returns (people this week, the new ones).
    """
    available = np.bincount(pool.row, minlength=len(n))
    k = np.minimum(np.rint(repeat_share * n).astype(np.int64), available)
    repeat = pool.take(pick_without_replacement(rng, pool.row, k))
    fresh = make_new(n - np.bincount(repeat.row, minlength=len(n)))
    return Persons.concat([repeat, fresh]), fresh
