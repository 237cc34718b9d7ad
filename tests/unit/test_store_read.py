"""``Store``: the one reader of an ingest store lists partitions from the manifest only and
refuses, in one line naming what is wrong (never a record value), a store that was changed
outside a commit."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import polars as pl
import pytest

from lds_dask.store.handmade import record_frame, write_store
from lds_dask.store.layout import COMMIT_FILE, MANIFEST_FILE, TMP_DIR, verify_store
from lds_dask.store.read import RECORD_COLUMNS, Store, StoreError

HART, MIDD, LEEDS = "E06000001", "E06000002", "E08000035"
MARK = "PERSONMARK"  # planted in every person id: must never reach a message


def records(n: int = 30, las=(HART, MIDD, LEEDS)) -> pl.DataFrame:
    return record_frame(
        [
            dict(
                test_id=f"t{i:03d}",
                person_id=f"{MARK}{i % 7}",
                la_code=las[i % len(las)],
                specimen_date=dt.date(2020, 10, 5) + dt.timedelta(days=i % 10),
                result="POSITIVE" if i % 4 == 0 else "NEGATIVE",
            )
            for i in range(n)
        ]
    )


def survey() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "la_code": [LEEDS, LEEDS, HART],
            "visit_date": [dt.date(2020, 10, 6)] * 3,
            "swab_result": ["POSITIVE", "NEGATIVE", "NEGATIVE"],
            "survey_weight": [1.5, 2.0, 1.0],
        }
    )


@pytest.fixture
def store(tmp_path):
    return write_store(tmp_path / "s", records(), survey())


def refused(path, match: str) -> str:
    with pytest.raises(StoreError, match=match) as info:
        Store(path)
    text = str(info.value)
    assert MARK not in text and len(text.splitlines()) == 1
    return text


def test_a_handmade_store_is_a_valid_committed_store(store):
    verify_store(store)  # every partition's sha256 as listed, nothing unlisted
    s = Store(store)
    assert s.la_codes() == [HART, MIDD, LEEDS] == sorted(s.partitions("records"))
    assert sorted(s.partitions("survey")) == [HART, LEEDS]
    assert sum(e["rows"] for e in s.partitions("records").values()) == 30
    assert len(s.manifest_sha256) == 64 and s.format["format_version"] == 1


def test_reads_return_the_rows_the_manifest_lists(store):
    s = Store(store)
    df = s.read_records((HART, LEEDS), RECORD_COLUMNS)
    assert df.height == 20 and set(df["la_code"]) == {HART, LEEDS}
    assert {"iso_week", "age_band", "imd_quintile"} <= set(df.columns)
    assert s.read_survey((HART, MIDD))["la_code"].to_list() == [HART]
    assert s.read_survey((MIDD,)) is None
    assert s.bundle_las(s.la_codes(), 1, min_bundles=3) == [(HART,), (MIDD,), (LEEDS,)]


def test_only_manifest_partitions_are_read(store):
    """A partition folder the manifest does not list is refused, never read."""
    stray = store / "records" / "la_code=E06000003"
    shutil.copytree(store / "records" / f"la_code={HART}", stray)
    refused(store, r"1 partition\(s\) under records/ are not in the manifest")


def test_a_stray_file_inside_a_partition_is_refused(store):
    folder = store / "records" / f"la_code={HART}"
    shutil.copy(folder / "part-0.parquet", folder / "part-1.parquet")
    refused(store, f"records/la_code={HART} holds 1 file")


def test_a_missing_partition_is_refused(store):
    shutil.rmtree(store / "survey" / f"la_code={LEEDS}")
    refused(store, f"partition survey/la_code={LEEDS} is missing")


def test_an_altered_partition_is_refused_when_read(store):
    s = Store(store)  # opened (and sent to tasks) before the file changes
    path = store / s.partitions()[MIDD]["file"]
    records(n=9, las=(MIDD,)).drop("la_code").write_parquet(path)
    with pytest.raises(StoreError, match=f"records/la_code={MIDD} sha256 differs") as info:
        s.read_records((HART, MIDD), RECORD_COLUMNS)
    assert MARK not in str(info.value)
    s.read_records((HART, LEEDS), RECORD_COLUMNS)  # the others still read


def test_a_manifest_row_count_that_disagrees_is_refused(store):
    manifest = json.loads((store / MANIFEST_FILE).read_text())
    manifest["partitions"]["records"][HART]["rows"] += 1
    (store / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=f"records/la_code={HART} row count differs"):
        Store(store).read_records((HART,), ("test_id",))


def test_a_manifest_entry_outside_the_layout_is_refused(store):
    """The manifest names each file; one pointing elsewhere is not followed."""
    manifest = json.loads((store / MANIFEST_FILE).read_text())
    manifest["partitions"]["records"][HART]["file"] = f"survey/la_code={LEEDS}/part-0.parquet"
    (store / MANIFEST_FILE).write_text(json.dumps(manifest))
    refused(store, f"records/la_code={HART}: the manifest entry is not in the store layout")


def test_a_pending_commit_is_refused(store):
    (store / TMP_DIR / "run1").mkdir(parents=True)
    (store / TMP_DIR / "run1" / COMMIT_FILE).write_text("{}")
    refused(store, "an ingest commit was interrupted; rerun `lds-dask ingest`")


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda s: shutil.rmtree(s), "no such store directory"),
        (lambda s: (s / "_store.json").unlink(), r"not a store \(no _store.json"),
        (lambda s: (s / MANIFEST_FILE).unlink(), "no _manifest.json"),
        (lambda s: (s / MANIFEST_FILE).write_text("{"), "manifest is not valid JSON"),
        (lambda s: (s / "_store.json").write_text('{"format_version": 9}'), "format_version 9"),
    ],
)
def test_a_store_that_is_not_one_is_refused(store, damage, match):
    damage(store)
    refused(store, match)
