"""The partition files ingest writes from coded rows: every value round-trips, as plain types.

Categorical fields travel through staging as integer codes and are written as parquet
dictionary pages straight from those codes; readers must still see the original strings.
"""

from __future__ import annotations

import polars as pl
import pyarrow.parquet as pq
from test_ingest_fixtures import make_records, make_survey, write

from lds_dask.contract.schemas import load_schema
from lds_dask.ingest.run import ingest

LA = "E08000025"  # Birmingham: in both runs below


def stored(store, sub: str = "records") -> pl.DataFrame:
    return pl.read_parquet(store / sub, hive_partitioning=True)


def test_every_field_round_trips_through_codes_across_runs(tmp_path):
    first, second = make_records(700, 1), make_records(300, 2, prefix="later")
    surveys = make_survey(200, 3)
    ingest([write(first, tmp_path / "a.parquet")], tmp_path / "s", progress=False)
    ingest(  # LA's partition now holds re-encoded old rows and new ones
        [tmp_path / "a.parquet", write(second, tmp_path / "b.csv")],
        tmp_path / "s",
        survey=write(surveys, tmp_path / "survey.parquet"),
        progress=False,
    )
    columns = load_schema("test_records").columns
    want = pl.concat([first, second]).sort("test_id")
    got = stored(tmp_path / "s").select(columns).sort("test_id")
    assert got.equals(want.select(columns).cast(got.schema))
    survey_cols = load_schema("survey_responses").columns
    got = stored(tmp_path / "s", "survey").select(survey_cols).sort("respondent_id", "visit_date")
    want = surveys.sort("respondent_id", "visit_date").cast(got.schema)
    assert got.sort(pl.all()).equals(want.sort(pl.all()))


def test_partition_files_have_plain_types_and_small_dictionaries(tmp_path):
    records = make_records(600, 4)
    ingest([write(records, tmp_path / "a.parquet")], tmp_path / "s", progress=False)
    part = tmp_path / "s" / "records" / f"la_code={LA}" / "part-0.parquet"
    meta = pq.ParquetFile(part).metadata
    assert b"ARROW:schema" not in (meta.metadata or {})  # no dictionary types leak to readers
    frame = pl.read_parquet(part)
    for name in ("result", "lsoa11_code", "sex", "age_band", "age_band_esp", "source_file"):
        assert frame.schema[name] == pl.String, name
    assert frame["specimen_date"].is_sorted()
    lsoas = pq.read_table(part, read_dictionary=["lsoa11_code"])["lsoa11_code"].chunk(0)
    used = records.filter(pl.col("la_code") == LA)["lsoa11_code"].drop_nulls().n_unique()
    assert len(lsoas.dictionary) == used  # only this LA's LSOAs, not all 32,844
    levels = {
        meta.schema.column(i).name: meta.schema.column(i).max_definition_level
        for i in range(meta.num_columns)
    }
    assert levels["test_id"] == levels["age_band"] == 0  # non-nullable: REQUIRED
    assert levels["lsoa11_code"] == levels["imd_decile"] == 1  # nullable: OPTIONAL
    date = meta.schema.names.index("specimen_date")
    stats = meta.row_group(0).column(date).statistics
    assert stats.has_min_max and str(stats.min) == str(frame["specimen_date"].min())
