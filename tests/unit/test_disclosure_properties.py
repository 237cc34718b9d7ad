"""Property tests: the safe view of thousands of generated small cubes is safe, every run.

Cubes follow the contract in docs/architecture.md: real LA codes (LTLAs of one county plus
a unitary LA, the county UTLA, the region and England), /total, /sex, /age_band and
/age_band_sex with int64 counts that sum exactly across categories and up the hierarchy.
The checks below re-derive every margin independently of lds_dask.sdc.rules.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lds_dask.contract import refdata
from lds_dask.sdc.rules import DisclosureRules, is_suppressed, safe_view

COUNTY = "E10000003"  # Cambridgeshire
AGES, SEXES = ["0-4", "5-14", "unknown"], ["F", "M", "U"]
SETTINGS = settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def areas(n_ltla: int) -> pd.DataFrame:
    """n_ltla LTLAs of one county, one unitary LA of the same region, county, region, England."""
    las = refdata.las().to_pandas()
    county = las[las.utla_code == COUNTY].head(n_ltla)
    region = county.region_code.iloc[0]
    unitary = las[(las.region_code == region) & (las.utla_code == las.la_code)].head(1)
    rows = [
        (r.la_code, r.la_name, "ltla", r.region_code, r.utla_code)
        for r in pd.concat([county, unitary]).itertuples()
    ]
    rows += [
        (COUNTY, county.utla_name.iloc[0], "utla", region, COUNTY),
        (region, county.region_name.iloc[0], "region", region, ""),
        (refdata.ENGLAND_CODE, refdata.ENGLAND_NAME, "country", "", ""),
    ]
    return pd.DataFrame(
        rows, columns=["area", "area_name", "area_type", "region_code", "utla_code"]
    )


def aggregate_areas(ltla: np.ndarray, meta: pd.DataFrame) -> np.ndarray:
    """LTLA values (first axis) extended with the county, region and England sums."""
    n = (meta.area_type == "ltla").sum()
    in_county = meta.utla_code.values[:n] == COUNTY
    county = ltla[in_county].sum(axis=0, keepdims=True)
    total = ltla.sum(axis=0, keepdims=True)
    return np.concatenate([ltla, county, total, total]).astype(np.int64)


def make_cube(positive: np.ndarray, negative: np.ndarray) -> xr.DataTree:
    """A contract cube from LTLA x week x age x sex positive and negative person counts."""
    meta = areas(positive.shape[0] - 1)
    weeks = pd.date_range("2021-01-04", periods=positive.shape[1], freq="7D")
    coords = {
        "area": meta.area.to_numpy().astype(str),
        "week": weeks,
        **{c: ("area", meta[c].to_numpy().astype(str)) for c in meta.columns if c != "area"},
    }
    cube_pos = aggregate_areas(positive, meta)
    cube_tested = aggregate_areas(positive + negative, meta)
    pop = np.full(cube_pos.shape, 5000.0)
    nodes = {}
    for name, keep in [
        ("total", ()),
        ("sex", ("sex",)),
        ("age_band", ("age_band",)),
        ("age_band_sex", ("age_band", "sex")),
    ]:
        axes = tuple(i + 2 for i, d in enumerate(("age_band", "sex")) if d not in keep)
        dims = ("area", "week", *keep)
        cats = {d: {"age_band": AGES, "sex": SEXES}[d] for d in keep}
        pp, pt = cube_pos.sum(axis=axes), cube_tested.sum(axis=axes)
        with np.errstate(divide="ignore", invalid="ignore"):
            nodes[f"/{name}"] = xr.Dataset(
                {
                    "people_positive": (dims, pp),
                    "people_tested": (dims, pt),
                    "population": (dims, pop.sum(axis=axes)),
                    "positivity_pct": (dims, 100 * pp / pt),
                    "positivity_pct_lower": (dims, 90 * pp / pt),
                    "case_rate_per_100k": (dims, pp / pop.sum(axis=axes) * 1e5),
                },
                coords={**coords, **cats},
            )
    return xr.DataTree.from_dict(nodes)


MARGINS = [
    ("/sex", "/total", "sex"),
    ("/age_band", "/total", "age_band"),
    ("/age_band_sex", "/sex", "age_band"),
    ("/age_band_sex", "/age_band", "sex"),
]


def area_groups(meta: pd.DataFrame) -> list[tuple[int, list[int]]]:
    """Every (total, parts) equation along the area hierarchy of :func:`areas`."""
    ltla = list(np.flatnonzero(meta.area_type == "ltla"))
    county = int(np.flatnonzero(meta.area_type == "utla")[0])
    region, england = len(meta) - 2, len(meta) - 1
    upper = [county, ltla[-1]]
    in_county = ltla[:-1]
    return [
        (county, in_county),
        (region, ltla),
        (region, upper),
        (england, ltla),
        (england, upper),
        (england, [region]),
    ]


def assert_margins_safe(safe: xr.DataTree, measure: str) -> None:
    """No margin (total + its parts) holds exactly one suppressed cell."""
    hidden = {p: is_suppressed(safe[p][measure + "_status"].values) for p in safe.groups[1:]}
    for part, total, dim in MARGINS:
        axis = safe[part][measure].dims.index(dim)
        n = hidden[part].sum(axis=axis) + hidden[total]
        assert not (n == 1).any(), f"{part} vs {total} over {dim} leaks"
    meta = areas(int((safe["/total"]["area_type"].values == "ltla").sum()) - 1)
    for path, h in hidden.items():
        for parent, parts in area_groups(meta):
            assert not ((h[parts].sum(axis=0) + h[parent]) == 1).any(), f"{path} area margin leaks"


def check_safe(cube: xr.DataTree, safe: xr.DataTree, rules: DisclosureRules) -> None:
    for path in cube.groups[1:]:
        raw, out = cube[path].dataset, safe[path].dataset
        for m in ("people_positive", "people_tested"):
            v, s = raw[m].values, out[m + "_status"].values
            published = ~is_suppressed(s)
            small = (v < rules.threshold) & ((v != 0) | rules.suppress_zeros)
            assert not (published & small).any(), "unsuppressed small count"
            assert np.isnan(out[m].values[~published]).all(), "suppressed value still shown"
            expected = (
                v if not rules.rounding else np.floor(v / rules.rounding + 0.5) * rules.rounding
            )
            np.testing.assert_array_equal(out[m].values[published], expected[published])
            assert ((s == 1) == small).all(), "primary status differs from the rule"
            assert (s[published] == (3 if rules.rounding else 0)).all(), "published cell status"
        src = is_suppressed(out["people_positive_status"].values) | is_suppressed(
            out["people_tested_status"].values
        )
        for d in ("positivity_pct", "positivity_pct_lower"):
            assert np.isnan(out[d].values[src]).all(), f"{d} from a suppressed count"
            if not rules.rounding:
                np.testing.assert_array_equal(out[d].values[~src], raw[d].values[~src])
        rate_src = is_suppressed(out["people_positive_status"].values)
        assert np.isnan(out["case_rate_per_100k"].values[rate_src]).all()
    for m in ("people_positive", "people_tested"):
        assert_margins_safe(safe, m)


def counts(max_value: int):
    shape = st.tuples(st.integers(2, 4), st.integers(1, 3), st.just(len(AGES)), st.just(len(SEXES)))
    return shape.flatmap(
        lambda s: st.tuples(
            arrays(np.int64, s, elements=st.integers(0, max_value)),
            arrays(np.int64, s, elements=st.integers(0, max_value)),
        )
    )


@SETTINGS
@given(counts(12), st.sampled_from([5, 10]), st.booleans(), st.sampled_from([0, 0, 5, 10]))
def test_safe_view_is_safe(pair, threshold, zeros, rounding):
    """No small count shown; no derived value from a suppressed count; no margin with a
    lone suppressed cell; every other cell exactly as computed (or rounded, if asked)."""
    rules = DisclosureRules(threshold=threshold, suppress_zeros=zeros, rounding=rounding)
    cube = make_cube(*pair)
    check_safe(cube, safe_view(cube, rules), rules)
