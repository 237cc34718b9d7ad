"""Exact counts per LA x ISO week from clean records, by the cube's definitions.

``tests`` counts every clean test (VOID and both types) in the record's LA;
``positive_tests`` the POSITIVE ones. A person-week belongs to the LA of the person's
first non-VOID in-scope test that week (earliest specimen_date, ties by smallest
test_id); it is positive when the person has any POSITIVE in-scope test that week, in any
LA. Scope PCR gives ``people_tested``/``people_positive``; all test types give the
``_all`` variants.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from lds_dask.contract.bands import iso_week

COUNT_COLUMNS = (
    "tests",
    "positive_tests",
    "people_tested",
    "people_positive",
    "people_tested_all",
    "people_positive_all",
)


def count_tests(records: pl.DataFrame) -> pl.DataFrame:
    """Tests and positive tests per la_code x iso_week."""
    return records.group_by("la_code", iso_week=iso_week("specimen_date")).agg(
        tests=pl.len(), positive_tests=(pl.col("result") == "POSITIVE").sum()
    )


def count_people(records: pl.DataFrame, pcr_only: bool) -> pl.DataFrame:
    """Owned person-weeks and positive person-weeks per la_code x iso_week."""
    valid = records.filter(pl.col("result") != "VOID")
    if pcr_only:
        valid = valid.filter(pl.col("test_type") == "PCR")
    weeks = (
        valid.with_columns(iso_week=iso_week("specimen_date"))
        .sort("specimen_date", "test_id")
        .group_by("person_id", "iso_week")
        .agg(pl.col("la_code").first(), is_positive=(pl.col("result") == "POSITIVE").any())
    )
    suffix = "" if pcr_only else "_all"
    return weeks.group_by("la_code", "iso_week").agg(
        pl.len().alias(f"people_tested{suffix}"),
        pl.col("is_positive").sum().alias(f"people_positive{suffix}"),
    )


def count_la_weeks(records: pl.DataFrame) -> pl.DataFrame:
    """All six truth counts per la_code x iso_week present in ``records``."""
    out = count_tests(records)
    for pcr_only in (True, False):
        out = out.join(
            count_people(records, pcr_only), on=["la_code", "iso_week"], how="full", coalesce=True
        )
    return out.with_columns(pl.col(c).fill_null(0).cast(pl.Int64) for c in COUNT_COLUMNS)


def complete_grid(partials: list[pl.DataFrame], la_codes: list[str], mondays) -> pl.DataFrame:
    """Sum chunk partials and fill every LA x week (zeros where nothing was tested)."""
    grid = pl.DataFrame({"la_code": la_codes}).join(
        pl.DataFrame({"iso_week": list(mondays)}, schema={"iso_week": pl.Date}), how="cross"
    )
    summed = (
        pl.concat(partials)
        .group_by("la_code", "iso_week")
        .agg(pl.col(c).sum() for c in COUNT_COLUMNS)
    )
    return (
        grid.join(summed, on=["la_code", "iso_week"], how="left")
        .with_columns(pl.col(c).fill_null(0).cast(pl.Int64) for c in COUNT_COLUMNS)
        .sort("la_code", "iso_week")
    )


def count_week(
    table: dict, pcr: tuple, everyone: tuple, la_codes: pl.Series, monday
) -> pl.DataFrame:
    """The same counts as :func:`count_la_weeks` for one bundle-week, by construction.

    ``table`` holds the week's records (``la`` index, ``result`` 0 POSITIVE / 2 VOID).
    ``pcr`` and ``everyone`` are (home LA index, positive) per distinct person-week with a
    non-VOID PCR test, resp. any non-VOID test. A person-week's first non-VOID test is in
    the home LA (``records.py``), so the home LA owns it; positive means any POSITIVE test
    that week. Counting with bincounts skips the sort and group-by of the string frame;
    the integration tests check the result against :func:`count_la_weeks` on the files.
    """
    n = len(la_codes)
    counts = {
        "tests": np.bincount(table["la"], minlength=n),
        "positive_tests": np.bincount(table["la"][table["result"] == 0], minlength=n),
    }
    for suffix, (la, positive) in (("", pcr), ("_all", everyone)):
        counts[f"people_tested{suffix}"] = np.bincount(la, minlength=n)
        counts[f"people_positive{suffix}"] = np.bincount(la[positive], minlength=n)
    keep = np.flatnonzero(counts["tests"] + counts["people_tested_all"])
    return pl.DataFrame(
        {
            "la_code": la_codes.gather(keep),
            "iso_week": pl.Series([monday] * keep.size, dtype=pl.Date),
            **{c: counts[c][keep].astype(np.int64) for c in COUNT_COLUMNS},
        }
    )
