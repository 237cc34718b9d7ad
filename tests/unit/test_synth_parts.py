"""Unit tests of the synthetic generator's building blocks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from click.testing import CliRunner

from lds_dask.cli.synth import command
from lds_dask.contract import refdata
from synthetic_gen import GenerateOptions, ModelParams
from synthetic_gen.cells import pick_without_replacement, sample_cells
from synthetic_gen.chunk import lfd_schedule
from synthetic_gen.dirty import ABOLISHED_LA_CODES
from synthetic_gen.ids import hex_ids, id_key, stable_ints
from synthetic_gen.people import Counter, Persons, Pool
from synthetic_gen.world import apportion, bundle_las


def test_apportion_is_exact_and_proportional():
    weights = refdata.las()["population"].to_numpy().astype(float)
    out = apportion(123_457, weights)
    assert out.sum() == 123_457
    assert np.all(np.abs(out - 123_457 * weights / weights.sum()) < 1)


def test_bundles_cover_every_la_once_in_code_order():
    pop = refdata.las()["population"].to_numpy().astype(float)
    bundles = bundle_las(pop, 7)
    assert np.array_equal(np.concatenate(bundles), np.arange(len(pop)))
    assert len(bundles) == 7


def test_stable_ints_are_stable_and_distinct():
    assert stable_ints("chunk", 1, 13) == stable_ints("chunk", 1, 13)
    assert stable_ints("chunk", 1, 13) != stable_ints("chunk", 13, 1)


def test_hex_ids_are_unique_opaque_and_ordered_like_their_values():
    ids = hex_ids(np.arange(100_000, dtype=np.uint64), id_key(42, "test"))
    assert ids.n_unique() == 100_000
    assert ids.str.contains("^[0-9a-f]{16}$").all()
    assert not ids.str.starts_with("0000000000").any()
    raw = np.array([5, 2**63 + 1, 17], dtype=np.uint64)
    assert list(np.argsort(raw)) == list(hex_ids(raw, None).arg_sort())


def test_sample_cells_follows_weights_per_row():
    rng = np.random.default_rng(1)
    weights = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, 0.0]])
    rows, cells = sample_cells(rng, weights, np.array([40_000, 10]))
    assert np.all(cells[rows == 1] == 1)
    share = np.mean(cells[rows == 0] == 2)
    assert 0.74 < share < 0.76
    assert not np.any(cells[rows == 0] == 1)


def test_pick_without_replacement_never_repeats_and_respects_k():
    rng = np.random.default_rng(2)
    group = rng.integers(0, 4, 1000)
    picked = pick_without_replacement(rng, group, np.array([10, 0, 300, 5]))
    assert len(np.unique(picked)) == len(picked)
    counts = np.bincount(group[picked], minlength=4)
    assert counts[1] == 0 and counts[0] <= 10 and counts[3] <= 5 and 150 < counts[2] <= 300


def test_sample_cells_many_draws_per_row_follow_weights():
    rng = np.random.default_rng(3)
    weights = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    rows, cells = sample_cells(rng, weights, np.array([40_000, 10, 0]))  # multinomial path
    assert np.array_equal(np.bincount(rows, minlength=3), [40_000, 10, 0])
    assert np.all(cells[rows == 1] == 1) and not np.any(cells[rows == 0] == 1)
    assert 0.74 < np.mean(cells[rows == 0] == 2) < 0.76


def _people(rng, rows: np.ndarray, counter: Counter) -> Persons:
    z = np.zeros(rows.size, dtype=np.int64)
    return Persons(np.sort(rows), z, z, z, z, counter.take(rows.size))


def test_pool_picks_distinct_people_of_each_row_across_blocks():
    rng, counter, pool = np.random.default_rng(4), Counter(0), Pool(4)
    for _ in range(5):  # five weekly blocks
        pool.add(_people(rng, rng.integers(0, 3, 300), counter))
    assert np.array_equal(pool.available(), np.bincount(pool.people.row[: pool.size], minlength=4))
    picked = pool.pick(rng, np.array([50, 0, 10_000, 7]))
    assert len(np.unique(picked.counter)) == len(picked)
    counts = np.bincount(picked.row, minlength=4)
    assert counts[1] == 0 and counts[3] == 0 and 35 < counts[0] <= 50
    assert pool.available()[2] * 0.5 < counts[2] <= pool.available()[2]
    # uniform over the row's people, whichever block holds them
    draws = np.concatenate([pool.pick(rng, np.array([0, 0, 1, 0])).counter for _ in range(4000)])
    block = np.searchsorted(np.asarray(pool.starts), draws.astype(np.int64), side="right") - 1
    share = np.bincount(block, minlength=5) / draws.size
    want = pool.counts[:, 2] / pool.counts[:, 2].sum()
    assert np.all(np.abs(share - want) < 0.04)


def test_lfd_schedule_starts_in_2021_and_ramps():
    m = ModelParams()
    assert lfd_schedule(dt.date(2020, 12, 21), m)[1] == 0
    first_day, ratio = lfd_schedule(dt.date(2020, 12, 28), m)  # Fri 1 Jan is day 4
    assert first_day == 4 and ratio == pytest.approx(m.lfd_people_ratio_start * 3 / 7)
    assert lfd_schedule(dt.date(2021, 5, 17), m) == (0, m.lfd_people_ratio_full)


def test_abolished_codes_are_valid_shape_but_not_current_las():
    assert not set(ABOLISHED_LA_CODES) & refdata.la_codes()


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"start": dt.date(2020, 5, 26)}, "Monday"),
        ({"scale": 0.0}, "scale"),
        ({"fmt": "xlsx"}, "format"),
        ({"dirty_rate": 0.9}, "dirty_rate"),
    ],
)
def test_options_reject_bad_values(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        GenerateOptions(**kwargs).check()


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    result = CliRunner().invoke(command, ["--out", str(tmp_path), "--start", "2020-05-26"])
    assert result.exit_code == 2
    assert "Monday" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "test_records").exists()


def test_cli_unparseable_date_exits_2(tmp_path):
    result = CliRunner().invoke(command, ["--out", str(tmp_path), "--start", "25/05/2020"])
    assert result.exit_code == 2
