"""Hand-checked examples of each disclosure rule (docs/architecture.md, lds_dask/disclosure.py).

Tables are small: weeks down, categories across. Status codes: 0 ok, 1 suppressed_primary,
2 suppressed_secondary, 3 rounded. Blank (NaN) is what gets published for 1 and 2.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from lds_dask.sdc.rules import (
    STATUS_NAMES,
    DisclosureError,
    DisclosureRules,
    apply_disclosure_control,
    safe_view,
)

NAN = np.nan
SEXES = ["F", "M", "U"]


def by_sex(**measures) -> xr.Dataset:
    """A node with dims (week, sex) from rows of F, M, U values."""
    return xr.Dataset(
        {m: (("week", "sex"), np.array(v)) for m, v in measures.items()}, coords={"sex": SEXES}
    )


def status(ds: xr.Dataset, measure: str) -> list:
    return ds[measure + "_status"].values.tolist()


def test_primary_counts_under_threshold_and_zeros_are_suppressed():
    out = apply_disclosure_control(by_sex(people_positive=[[25, 7, 0]]), DisclosureRules())
    assert status(out, "people_positive") == [[0, 1, 1]]
    np.testing.assert_array_equal(out["people_positive"].values, [[25, NAN, NAN]])


def test_zeros_not_disclosive_then_the_zero_is_the_complement():
    # 7 is alone in the margin, so the smallest published cell (the 0) is suppressed too.
    out = apply_disclosure_control(
        by_sex(people_positive=[[25, 7, 0]]), DisclosureRules(suppress_zeros=False)
    )
    assert status(out, "people_positive") == [[0, 1, 2]]


def test_threshold_is_configurable():
    out = apply_disclosure_control(
        by_sex(people_positive=[[25, 7, 12]]), DisclosureRules(threshold=5)
    )
    assert status(out, "people_positive") == [[0, 0, 0]]


def test_secondary_suppresses_the_next_smallest_cell_of_the_margin():
    out = apply_disclosure_control(
        by_sex(people_positive=[[40, 5, 12], [40, 30, 12]]), DisclosureRules()
    )
    assert status(out, "people_positive") == [[0, 1, 2], [0, 0, 0]]
    np.testing.assert_array_equal(out["people_positive"].values, [[40, NAN, NAN], [40, 30, 12]])


def test_a_suppressed_margin_total_counts_as_the_second_suppressed_cell():
    total = xr.Dataset({"people_positive_status": ("week", np.array([1, 0], np.int8))})
    out = apply_disclosure_control(
        by_sex(people_positive=[[3, 5, 0], [40, 5, 12]]),
        DisclosureRules(suppress_zeros=False),
        margins={"sex": total},
    )
    # week 1: 3 and 5 suppressed (and the total) -> nothing more; week 2: 5 alone -> 12 too
    assert status(out, "people_positive") == [[1, 1, 0], [0, 1, 2]]


def test_secondary_iterates_across_both_directions_until_stable():
    node = xr.Dataset(
        {
            "people_positive": (
                ("age_band", "sex"),
                np.array([[5, 50, 60], [30, 40, 70], [80, 90, 100]]),
            )
        },
        coords={"age_band": ["a", "b", "c"], "sex": SEXES},
    )
    out = apply_disclosure_control(node, DisclosureRules())
    assert status(out, "people_positive") == [[1, 2, 0], [2, 2, 0], [0, 0, 0]]


def test_area_hierarchy_ltlas_against_their_county_region_and_england():
    codes = ["E07000008", "E07000009", "E07000010", "E10000003", "E12000006", "E92000001"]
    node = xr.Dataset(
        {"people_positive": ("area", np.array([50, 4, 30, 84, 84, 84]))},
        coords={
            "area": codes,
            "area_type": ("area", ["ltla"] * 3 + ["utla", "region", "country"]),
            "region_code": ("area", ["E12000006"] * 5 + [""]),
            "utla_code": ("area", ["E10000003"] * 4 + ["", ""]),
        },
    )
    out = apply_disclosure_control(node, DisclosureRules())
    assert status(out, "people_positive") == [0, 1, 2, 0, 0, 0]


def test_derived_values_follow_their_numerator_and_denominator():
    node = by_sex(
        people_tested=[[100, 8, 50]],
        people_positive=[[20, 2, 12]],
        positivity_pct=[[20.0, 25.0, 24.0]],
        positivity_pct_upper=[[28.0, 59.0, 37.0]],
        case_rate_per_100k=[[200.0, 20.0, 120.0]],
        population=[[1e4, 1e4, 1e4]],
        sig_vs_england=[["higher", "similar", "similar"]],
    )
    out = apply_disclosure_control(node, DisclosureRules())
    assert status(out, "people_tested") == [[0, 1, 2]]
    assert status(out, "positivity_pct") == [[0, 1, 2]]
    assert status(out, "positivity_pct_upper") == [[0, 1, 2]]
    assert status(out, "case_rate_per_100k") == [[0, 1, 2]]
    np.testing.assert_array_equal(out["positivity_pct"].values, [[20.0, NAN, NAN]])
    assert out["sig_vs_england"].values.tolist() == [["higher", "", ""]]
    np.testing.assert_array_equal(out["population"].values, [[1e4, 1e4, 1e4]])  # public


def test_rounding_to_base_5_marks_every_published_count_and_recomputes_rates():
    node = by_sex(
        people_tested=[[100, 100, 100], [200, 200, 200]],
        people_positive=[[23, 7, 48], [12, 13, 15]],
        positivity_pct=[[23.0, 7.0, 48.0], [6.0, 6.5, 7.5]],
    )
    out = apply_disclosure_control(node, DisclosureRules(rounding=5))
    assert status(out, "people_positive") == [[2, 1, 3], [3, 3, 3]]
    np.testing.assert_array_equal(out["people_positive"].values, [[NAN, NAN, 50], [10, 15, 15]])
    np.testing.assert_allclose(out["positivity_pct"].values, [[NAN, NAN, 50.0], [5.0, 7.5, 7.5]])
    assert status(out, "positivity_pct") == [[2, 1, 3], [3, 3, 3]]
    assert "may not sum" in out.attrs["rounding_note"]


def test_inequality_is_suppressed_when_any_decile_it_uses_is_suppressed():
    deciles = [str(d) for d in range(1, 11)] + ["unknown"]
    pos = np.array([[50] * 10 + [0], [50] * 9 + [3, 0]])  # week 2: decile 10 is small
    tree = xr.DataTree.from_dict(
        {
            "/total": xr.Dataset({"people_positive": ("week", pos.sum(1))}),
            "/imd_decile": xr.Dataset(
                {"people_positive": (("week", "imd_decile"), pos)}, coords={"imd_decile": deciles}
            ),
            "/inequality": xr.Dataset({"sii_case_rate_per_100k": ("week", [12.5, 11.0])}),
        }
    )
    safe = safe_view(tree, DisclosureRules(suppress_zeros=False))
    # week 2: decile 10 is suppressed (and 'unknown' as its complement), so the SII is too
    assert status(safe["/inequality"].dataset, "sii_case_rate_per_100k") == [0, 1]
    np.testing.assert_array_equal(safe["/inequality"]["sii_case_rate_per_100k"].values, [12.5, NAN])


def test_a_measure_without_a_rule_is_suppressed_whole():
    out = apply_disclosure_control(
        by_sex(people_positive=[[25, 30, 40]], mystery=[[1.0, 2.0, 3.0]]), DisclosureRules()
    )
    assert status(out, "mystery") == [[1, 1, 1]]
    assert json.loads(out.attrs["disclosure_unverified"]) == ["mystery"]


def test_rules_are_recorded_and_validated():
    out = apply_disclosure_control(
        by_sex(people_positive=[[25, 30, 40]]), DisclosureRules(threshold=7)
    )
    assert json.loads(out.attrs["disclosure_rules"]) == {
        "threshold": 7,
        "suppress_zeros": True,
        "rounding": 0,
    }
    assert STATUS_NAMES == ("ok", "suppressed_primary", "suppressed_secondary", "rounded")
    with pytest.raises(DisclosureError, match="rounding"):
        DisclosureRules(rounding=3)
    with pytest.raises(DisclosureError, match="unknown disclosure rule"):
        DisclosureRules.from_config({"threshold": 10, "zeros": True})
    assert DisclosureRules.from_config({"rounding": 10}).rounding == 10


def test_a_missing_count_is_suppressed_and_counts_in_its_margin():
    # NaN (a count that cannot be checked) is never published: it is suppressed, and with
    # the 7 the margin holds two suppressed cells, so nothing else is needed.
    out = apply_disclosure_control(by_sex(people_positive=[[25.0, 7.0, NAN]]), DisclosureRules())
    assert status(out, "people_positive") == [[0, 1, 1]]


def test_a_lone_ltla_in_its_county_suppresses_the_county_total():
    # E07000009 (4) is the only LTLA of its county listed (the county also holds unlisted
    # ones): no part is left to suppress, so the county total (40) is; the region margin
    # of LTLAs then needs its complement (50, the unitary LA).
    codes = ["E07000008", "E07000009", "E10000003", "E12000006", "E92000001"]
    node = xr.Dataset(
        {"people_positive": ("area", np.array([50, 4, 40, 90, 90]))},
        coords={
            "area": codes,
            "area_type": ("area", ["ltla", "ltla", "utla", "region", "country"]),
            "region_code": ("area", ["E12000006"] * 4 + [""]),
            "utla_code": ("area", ["E07000008", "E10000003", "E10000003", "", ""]),
        },
    )
    out = apply_disclosure_control(node, DisclosureRules())
    assert status(out, "people_positive") == [2, 1, 2, 0, 0]


def one_sex(values, total_status) -> tuple[xr.Dataset, dict]:
    """A node with a one-category ``sex`` dim, and the status of its total (the age node)."""
    node = xr.Dataset(
        {"people_positive": (("age_band", "sex"), np.array(values)[:, None])},
        coords={"age_band": ["a", "b", "c"], "sex": ["F"]},
    )
    total = xr.Dataset(
        {"people_positive_status": ("age_band", np.array(total_status, np.int8))},
        coords={"age_band": ["a", "b", "c"]},
    )
    return node, {"sex": total}


def test_a_one_part_margin_whose_total_is_suppressed_is_accepted():
    # each cell IS its total; where that total is suppressed too, the margin holds two
    node, margins = one_sex([5, 70, 60], [1, 2, 0])
    out = apply_disclosure_control(node, DisclosureRules(), margins=margins)
    # the complement over age is 70 (b), not the smaller 60: c equals a published total
    assert status(out, "people_positive") == [[1], [2], [0]]


def test_a_lone_cell_whose_published_total_leaves_nothing_to_suppress_is_refused():
    # the margins say b and c are published although a (5) is suppressed: inconsistent,
    # as no safe view of /age_band could say that; refuse rather than publish
    node, margins = one_sex([5, 70, 60], [1, 0, 0])
    with pytest.raises(DisclosureError, match="inconsistent"):
        apply_disclosure_control(node, DisclosureRules(), margins=margins)
