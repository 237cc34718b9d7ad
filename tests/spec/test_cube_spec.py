"""Spec: small hand-written record tables in, exact cube values out.

Week 1 is Monday 2020-10-05, week 2 Monday 2020-10-12. Hartlepool (E06000001) and
Middlesbrough (E06000002) are North East unitaries; Leeds (E08000035) supplies enough
positives for a DSR and survey responses.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from lds_dask.contract import refdata
from lds_dask.cube import stats
from lds_dask.cube.build import CubeConfig, build_cube, cube_to_frame, open_cube
from lds_dask.store.handmade import record_frame, write_store

HART, MIDD, LEEDS = "E06000001", "E06000002", "E08000035"
NE, YH, ENG = "E12000001", "E12000003", "E92000001"
W1, W2 = np.datetime64("2020-10-05", "ns"), np.datetime64("2020-10-12", "ns")
HART_LSOA = "E01011950"  # IMD decile 1


def day(n: int) -> dt.date:
    return dt.date(2020, 10, 5) + dt.timedelta(days=n)


def spec_records() -> pl.DataFrame:
    r = [
        # p1 tests in two LAs in week 1: Middlesbrough first (earlier date) owns it.
        dict(test_id="t01", person_id="p1", specimen_date=day(1), result="NEGATIVE", la_code=HART),
        dict(test_id="t02", person_id="p1", specimen_date=day(0), result="POSITIVE", la_code=MIDD),
        # p2: same day in both LAs; smallest test_id (a02, Middlesbrough) owns it, and the
        # positive in Hartlepool makes the person-week positive.
        dict(test_id="b02", person_id="p2", specimen_date=day(2), result="POSITIVE", la_code=HART),
        dict(test_id="a02", person_id="p2", specimen_date=day(2), result="NEGATIVE", la_code=MIDD),
        # p3: VOID first (age 20), then a valid test (age 70): the valid row owns.
        dict(
            test_id="t30", person_id="p3", specimen_date=day(0), result="VOID", la_code=HART, age=20
        ),
        dict(
            test_id="t31",
            person_id="p3",
            specimen_date=day(3),
            result="NEGATIVE",
            la_code=HART,
            age=70,
        ),
        # p4: only a VOID test: a test, not a person.
        dict(test_id="t40", person_id="p4", specimen_date=day(1), result="VOID", la_code=HART),
        # p5: only a positive LFD: a test and a positive test, a person only in ALL scope.
        dict(
            test_id="t50",
            person_id="p5",
            specimen_date=day(1),
            result="POSITIVE",
            la_code=HART,
            test_type="LFD",
            sex="M",
        ),
        # p6: unknown LSOA and age, positive PCR.
        dict(
            test_id="t60",
            person_id="p6",
            specimen_date=day(4),
            result="POSITIVE",
            la_code=HART,
            age=None,
        ),
        # week 2: p1 again (Hartlepool only) and p7 with a known LSOA.
        dict(test_id="t70", person_id="p1", specimen_date=day(8), result="NEGATIVE", la_code=HART),
        dict(
            test_id="t71",
            person_id="p7",
            specimen_date=day(9),
            result="POSITIVE",
            la_code=HART,
            sex="M",
            lsoa11_code=HART_LSOA,
        ),
    ]
    ages = [5, 12, 20, 30, 40, 50, 60, 70, 80, 90]
    r += [
        dict(
            test_id=f"L{i:03d}",
            person_id=f"L{i}",
            specimen_date=day(i % 7),
            la_code=LEEDS,
            result="POSITIVE" if i % 3 == 0 else "NEGATIVE",
            age=ages[i % 10],
            sex="FM"[i % 2],
        )
        for i in range(60)
    ]
    return record_frame(r)


def spec_survey() -> pl.DataFrame:
    rows = [
        (
            f"s{i}",
            day(i % 7),
            LEEDS,
            40,
            "F",
            "WHITE",
            "POSITIVE" if i % 10 == 0 else "NEGATIVE",
            100.0 + i,
        )
        for i in range(50)
    ]
    cols = [
        "respondent_id",
        "visit_date",
        "la_code",
        "age",
        "sex",
        "ethnicity",
        "swab_result",
        "survey_weight",
    ]
    return pl.DataFrame(rows, schema=cols, orient="row")


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    base = tmp_path_factory.mktemp("spec")
    write_store(base / "store", spec_records(), spec_survey())
    return open_cube(build_cube(base / "store", base / "cube.zarr", progress=False))


@pytest.fixture(scope="module")
def cube_all(tmp_path_factory):
    base = tmp_path_factory.mktemp("spec_all")
    write_store(base / "store", spec_records())
    out = build_cube(
        base / "store", base / "cube.zarr", progress=False, config=CubeConfig(people_scope="ALL")
    )
    return open_cube(out)


COUNTS = ["tests", "positive_tests", "people_tested", "people_positive"]


def counts_at(cube, area, week, node="total", **sel):
    ds = cube[node].ds.sel(area=area, week=week, **sel)
    return [int(ds[c].values) for c in COUNTS]


@pytest.mark.parametrize(
    "area,week,expected",
    [
        (HART, W1, [7, 3, 2, 1]),  # t01 b02 t30 t31 t40 t50 t60; people p3, p6 (p6 positive)
        (MIDD, W1, [2, 1, 2, 2]),  # people p1, p2 owned here, both positive
        (NE, W1, [9, 4, 4, 3]),
        (HART, W2, [2, 1, 2, 1]),
        (MIDD, W2, [0, 0, 0, 0]),
    ],
)
def test_counts_pcr_scope(cube, area, week, expected):
    assert counts_at(cube, area, week) == expected


def test_counts_all_scope(cube_all):
    # ALL scope: p5's LFD makes a person; p1 is still owned by Middlesbrough.
    assert counts_at(cube_all, HART, W1) == [7, 3, 3, 2]
    assert counts_at(cube_all, MIDD, W1) == [2, 1, 2, 2]


def test_counts_are_int64(cube):
    assert all(cube["total"].ds[c].dtype == np.int64 for c in COUNTS)


def test_owning_row_sets_categories(cube):
    # p3's VOID row (age 20) is a 15-24 test; the person is 65-74 from the valid row.
    assert counts_at(cube, HART, W1, "age_band", age_band="15-24") == [1, 0, 0, 0]
    assert counts_at(cube, HART, W1, "age_band", age_band="65-74") == [1, 0, 1, 0]
    assert counts_at(cube, HART, W1, "age_band", age_band="unknown") == [1, 1, 1, 1]
    assert counts_at(cube, HART, W1, "age_band_sex", age_band="65-74", sex="F") == [1, 0, 1, 0]


def test_unknown_lsoa(cube):
    assert counts_at(cube, HART, W1, "imd_decile", imd_decile="unknown") == [7, 3, 2, 1]
    assert counts_at(cube, HART, W2, "imd_decile", imd_decile="1") == [1, 1, 1, 1]
    lsoa = cube["lsoa"].ds
    assert int(lsoa["tests"].sum()) == 1  # only t71 has an LSOA
    one = lsoa.sel(lsoa=HART_LSOA, period="wave_2")
    assert [int(one[c]) for c in ("tests", "people_tested", "people_positive")] == [1, 1, 1]
    assert str(one["la_code"].values) == HART and str(one["imd_decile"].values) == "1"


def test_aggregates_equal_la_sums(cube):
    for node in ("total", "sex", "age_band_sex", "imd_decile"):
        ds = cube[node].ds[COUNTS].compute()
        la = ds.isel(area=slice(0, 309)).sum("area")
        england = ds.sel(area=ENG)
        for c in COUNTS:
            np.testing.assert_array_equal(england[c].values, la[c].values)
        ne = ds.where(ds["region_code"] == NE, drop=True).where(
            ds["area_type"] == "ltla", drop=True
        )
        np.testing.assert_array_equal(
            ne["tests"].sum("area").values, ds["tests"].sel(area=NE).values
        )


def test_rates_match_stats(cube):
    ds = cube["total"].ds.sel(area=[HART, MIDD, NE, ENG]).compute()
    pop = refdata.population().group_by("area_code").agg(pl.col("population").sum())
    pops = dict(pop.iter_rows())
    expected_pop = [pops[HART], pops[MIDD], pops[NE], pops[ENG]]
    np.testing.assert_allclose(ds["population"].isel(week=0).values, expected_pop)
    x = ds["people_positive"].values.astype(float)
    lo, hi = stats.rate_ci(x, ds["population"].values)
    np.testing.assert_allclose(ds["case_rate_per_100k_lower"].values, lo, rtol=1e-12)
    np.testing.assert_allclose(ds["case_rate_per_100k_upper"].values, hi, rtol=1e-12)
    n = ds["people_tested"].values.astype(float)
    wl, wu = stats.wilson_ci(x, np.where(n > 0, n, np.nan))
    np.testing.assert_allclose(ds["positivity_pct_lower"].values, wl * 100, rtol=1e-12)
    np.testing.assert_allclose(ds["positivity_pct_upper"].values, wu * 100, rtol=1e-12)
    assert np.isnan(ds["positivity_pct"].sel(area=MIDD, week=W2))


def test_dsr_matches_stats(cube):
    from lds_dask.contract.bands import ESP_BANDS

    ds = cube["total"].ds.sel(area=LEEDS, week=W1).compute()
    recs = spec_records().filter(pl.col("la_code") == LEEDS)
    pos_ages = recs.filter(pl.col("result") == "POSITIVE")["age"].to_list()
    counts = np.zeros(len(ESP_BANDS))
    for a in pos_ages:
        counts[min(a // 5, 18)] += 1
    pop = refdata.population().filter(pl.col("area_code") == LEEDS)
    pops = np.zeros(len(ESP_BANDS))
    for a, n in pop.group_by("age").agg(pl.col("population").sum()).iter_rows():
        pops[min(a // 5, 18)] += n
    std = refdata.esp2013()["esp_population"].to_numpy()
    value, lower, upper = stats.dsr(counts, pops, std)
    assert len(pos_ages) == 20
    np.testing.assert_allclose(
        [
            ds["case_rate_dsr_per_100k"],
            ds["case_rate_dsr_per_100k_lower"],
            ds["case_rate_dsr_per_100k_upper"],
        ],
        [value, lower, upper],
        rtol=1e-10,
    )
    assert np.isnan(cube["total"].ds["case_rate_dsr_per_100k"].sel(area=HART, week=W1))


def test_significance_matches_stats(cube):
    ds = cube["total"].ds.compute()
    eng = ds["case_rate_per_100k"].sel(area=ENG)
    expected = stats.significance(
        ds["case_rate_per_100k_lower"].values,
        ds["case_rate_per_100k_upper"].values,
        comparator=np.broadcast_to(eng.values, ds["tests"].shape),
    )
    assert ds["sig_vs_england"].values.tolist() == np.asarray(expected).tolist()
    region = ds["case_rate_per_100k"].sel(area=YH)
    leeds = ds.sel(area=LEEDS)
    exp = stats.significance(
        leeds["case_rate_per_100k_lower"].values,
        leeds["case_rate_per_100k_upper"].values,
        comparator=region.values,
    )
    assert leeds["sig_vs_region"].values.tolist() == np.asarray(exp).tolist()
    assert str(ds["sig_vs_region"].sel(area=ENG, week=W1).values) == "not compared"


def test_survey_prevalence(cube):
    sv = spec_survey()
    w = sv["survey_weight"].to_numpy()
    pos = (sv["swab_result"] == "POSITIVE").to_numpy()
    p = (w * pos).sum() / w.sum()
    n_eff = w.sum() ** 2 / (w**2).sum()
    lo, hi = stats.wilson_ci(p * n_eff, n_eff)
    for area in (LEEDS, YH, ENG):  # only Leeds has responses: pooled sums are Leeds'
        ds = cube["total"].ds.sel(area=area, week=W1)
        np.testing.assert_allclose(
            [
                ds["survey_prevalence_pct"],
                ds["survey_prevalence_pct_lower"],
                ds["survey_prevalence_pct_upper"],
            ],
            [p * 100, lo * 100, hi * 100],
            rtol=1e-12,
        )
    leeds = cube["total"].ds.sel(area=LEEDS, week=W1)
    np.testing.assert_allclose(
        leeds["positivity_to_prevalence_ratio"],
        leeds["positivity_pct"] / leeds["survey_prevalence_pct"],
    )
    assert np.isnan(cube["total"].ds["survey_prevalence_pct"].sel(area=HART, week=W1))


def test_areas_weeks_and_neighbours(cube):
    total = cube["total"].ds
    assert total.sizes["area"] == 309 + 24 + 9 + 1
    assert list(total["area"].values[:2]) == [HART, MIDD]
    assert str(total["area"].values[-1]) == ENG
    assert set(total["area_type"].values.tolist()) == {"ltla", "utla", "region", "country"}
    assert total["week"].dtype == np.dtype("datetime64[ns]")
    assert list(total["week"].values) == [W1, W2]
    nb = cube.ds["neighbours"].sel(area=HART).values.tolist()
    assert len(nb) == 15 and HART not in nb and len(set(nb)) == 15
    assert set(cube.ds["neighbours"].sel(area=ENG).values.tolist()) == {""}


def test_attrs_and_provenance(cube):
    for node in ("total", "sex", "inequality", "lsoa"):
        for name, var in cube[node].ds.data_vars.items():
            assert var.attrs.get("units") is not None and var.attrs.get("long_name"), name
    attrs = cube.ds.attrs
    assert len(attrs["store_manifest_sha256"]) == 64
    assert '"people_scope": "PCR"' in attrs["config"]
    assert attrs["attribution"] == refdata.ATTRIBUTION
    assert "first valid" in attrs["definitions"]


def test_inequality_node(cube):
    ineq = cube["inequality"].ds
    assert set(ineq.data_vars) == {
        "sii_case_rate_per_100k",
        "rii_case_rate_per_100k",
        "sii_positivity_pct",
        "rii_positivity_pct",
    }
    assert ineq["sii_positivity_pct"].dims == ("area", "week")


def test_cube_to_frame(cube):
    frame = cube_to_frame(cube, "sex")
    assert frame.columns == [
        "area_code",
        "area_name",
        "area_type",
        "week",
        "breakdown",
        "category",
        "measure",
        "value",
    ]
    n_measures = sum(v.dtype.kind in "iuf" for v in cube["sex"].ds.data_vars.values())
    assert frame.height == 343 * 2 * 3 * n_measures
    row = frame.filter(
        (pl.col("area_code") == HART)
        & (pl.col("measure") == "tests")
        & (pl.col("category") == "M")
        & (pl.col("week") == dt.datetime(2020, 10, 5))
    )
    assert row["value"].to_list() == [1.0]
    pair = cube_to_frame(cube, "age_band_sex", kind="pandas")
    assert "65-74|F" in set(pair["category"])
