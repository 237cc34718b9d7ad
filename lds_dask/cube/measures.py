"""Derived measures of the cube: rates, proportions, CIs, DSR, significance, survey, SII.

Everything is vectorised over whole area x week x category arrays with ``lds_dask.cube.stats``
(PHEindicatormethods methods); nothing loops over rows. Conventions:

* rates per 100,000 population get Byar's limits (exact Poisson below 10 events);
* ``positivity_pct`` = people_positive / people_tested x 100 with Wilson limits;
* limits are NaN where the measure is undefined (no denominator, nobody tested).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from lds_dask.contract import refdata
from lds_dask.cube import stats

PER_100K = 100_000
CONFIDENCE = 0.95

MEASURE_ATTRS: dict[str, tuple[str, str]] = {
    "tests": ("tests", "Tests (all types and results, VOID included)"),
    "positive_tests": ("tests", "Positive tests (all types)"),
    "people_tested": ("people", "People tested (person-weeks owned by the area, in scope)"),
    "people_positive": ("people", "People testing positive (owned person-weeks with a positive)"),
    "population": ("people", "Resident population, ONS mid-2020 (denominator)"),
    "testing_rate_per_100k": ("per 100,000 population", "People tested per 100,000"),
    "case_rate_per_100k": ("per 100,000 population", "People testing positive per 100,000"),
    "positivity_pct": ("percent", "People testing positive as a share of people tested"),
    "case_rate_dsr_per_100k": (
        "per 100,000 ESP2013 population",
        "Directly age-standardised case rate (ESP2013, Dobson limits)",
    ),
    "sig_vs_england": ("category", "case_rate_per_100k compared with England (CI vs value)"),
    "sig_vs_region": ("category", "case_rate_per_100k compared with the region (CI vs value)"),
    "positivity_sig_vs_england": ("category", "positivity_pct compared with England"),
    "positivity_sig_vs_region": ("category", "positivity_pct compared with the region"),
    "survey_prevalence_pct": ("percent", "Weighted survey swab positivity (prevalence)"),
    "survey_responses": ("swabs", "Survey swabs"),
    "survey_effective_n": ("swabs", "Kish effective sample size of the survey swabs"),
    "positivity_to_prevalence_ratio": (
        "ratio",
        "positivity_pct / survey_prevalence_pct: "
        "test-seeking bias indicator (>1: tests find positives "
        "more often than random sampling does)",
    ),
    "sii_case_rate_per_100k": (
        "per 100,000 population",
        "Slope index of inequality of the case rate across IMD deciles (least minus most deprived)",
    ),
    "rii_case_rate_per_100k": (
        "ratio",
        "Relative index of inequality of the case rate (least / most deprived fitted values)",
    ),
    "sii_positivity_pct": (
        "percent",
        "Slope index of inequality of positivity across IMD deciles (least minus most deprived)",
    ),
    "rii_positivity_pct": ("ratio", "Relative index of inequality of positivity"),
}


def add_rate_measures(ds: xr.Dataset, population: xr.DataArray) -> xr.Dataset:
    """Add population (area x categories, repeated over weeks), then the rate measures."""
    dims = ds["people_tested"].dims
    pop = np.broadcast_to(np.expand_dims(population.values, 1), ds["people_tested"].shape)
    return derive_rate_measures(ds.assign(population=(dims, pop.copy())))


def derive_rate_measures(ds: xr.Dataset) -> xr.Dataset:
    """Testing and case rates per 100,000 and positivity, with 95% limits, from a node's
    counts and ``population`` (any dims; plots use it on counts summed over a period).

    Computed on numpy arrays, not on xarray objects: cheaper, and the limits of a count
    depend on the count alone, so they are computed once per distinct count
    (:func:`count_limits`)."""
    dims = ds["people_tested"].dims
    pop = ds["population"].broadcast_like(ds["people_tested"]).transpose(*dims).values
    out = {}
    for name, count in (
        ("testing_rate_per_100k", "people_tested"),
        ("case_rate_per_100k", "people_positive"),
    ):
        x = ds[count].values.astype(float)
        lower, upper = count_limits(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = (dims, x / pop * PER_100K)
            out[f"{name}_lower"] = (dims, lower / pop * PER_100K)
            out[f"{name}_upper"] = (dims, upper / pop * PER_100K)
    return add_positivity(ds.assign(out))


def count_limits(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% limits of Poisson counts (exact below 10, Byar's from 10: ``stats.rate_ci``),
    evaluated once per distinct value: the special functions are the costly part."""
    values, inverse = np.unique(x, return_inverse=True)
    lower, upper = stats.rate_ci(values, 1.0, 1, CONFIDENCE)
    return lower[inverse].reshape(x.shape), upper[inverse].reshape(x.shape)


def add_positivity(ds: xr.Dataset) -> xr.Dataset:
    """positivity_pct with Wilson limits; NaN where nobody was tested."""
    dims = ds["people_tested"].dims
    x = ds["people_positive"].values.astype(float)
    n = ds["people_tested"].values.astype(float)
    n = np.where(n > 0, n, np.nan)
    lower, upper = stats.wilson_ci(x, n, CONFIDENCE)
    return ds.assign(
        positivity_pct=(dims, x / n * 100),
        positivity_pct_lower=(dims, lower * 100),
        positivity_pct_upper=(dims, upper * 100),
    )


def add_dsr(total: xr.Dataset, esp_counts: np.ndarray, esp_pops: np.ndarray) -> xr.Dataset:
    """Age-standardised case rate: people_positive by ESP band (area, week, band) against
    population by ESP band (area, band); NaN below 10 events (PHE rule)."""
    std = refdata.esp2013()["esp_population"].to_numpy().astype(float)
    value, lower, upper = stats.dsr(
        esp_counts.astype(float), esp_pops[:, None, :], std, PER_100K, CONFIDENCE, axis=-1
    )
    dims = ("area", "week")
    total["case_rate_dsr_per_100k"] = (dims, value)
    total["case_rate_dsr_per_100k_lower"] = (dims, lower)
    total["case_rate_dsr_per_100k_upper"] = (dims, upper)
    return total


def add_significance(total: xr.Dataset) -> xr.Dataset:
    """Fingertips comparison of each area's CI with England's and its region's value."""
    areas = list(total["area"].values)
    region_row = np.array(
        [areas.index(r) if r in areas else -1 for r in total["region_code"].values]
    )
    for measure, prefix in (("case_rate_per_100k", ""), ("positivity_pct", "positivity_")):
        value = total[measure].values
        lo, hi = total[f"{measure}_lower"].values, total[f"{measure}_upper"].values
        england = np.broadcast_to(value[areas.index(refdata.ENGLAND_CODE)], value.shape)
        region = np.where((region_row >= 0)[:, None], value[region_row], np.nan)
        for tag, ref in (("england", england), ("region", region)):
            sig = stats.significance(lo, hi, comparator=ref)
            total[f"{prefix}sig_vs_{tag}"] = (("area", "week"), np.asarray(sig).astype(object))
    return total


def add_survey(total: xr.Dataset, sums: dict[str, np.ndarray]) -> xr.Dataset:
    """Weighted survey prevalence with Wilson limits on the Kish effective sample size.

    prevalence = sum(w * positive) / sum(w); n_eff = sum(w)^2 / sum(w^2). Wilson on
    (p * n_eff, n_eff) widens the interval for unequal weights and small samples.
    """
    dims = ("area", "week")
    w, wp, w2 = sums["weight_sum"], sums["weighted_positive"], sums["weight_sq_sum"]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(w > 0, wp / w, np.nan)
        n_eff = np.where(w2 > 0, w**2 / w2, np.nan)
        lower, upper = stats.wilson_ci(p * n_eff, n_eff, CONFIDENCE)
    total["survey_responses"] = (dims, sums["survey_responses"])
    total["survey_effective_n"] = (dims, n_eff)
    total["survey_prevalence_pct"] = (dims, p * 100)
    total["survey_prevalence_pct_lower"] = (dims, np.asarray(lower) * 100)
    total["survey_prevalence_pct_upper"] = (dims, np.asarray(upper) * 100)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = total["positivity_pct"] / total["survey_prevalence_pct"]
    total["positivity_to_prevalence_ratio"] = ratio.where(np.isfinite(ratio))
    return total


def inequality_dataset(
    imd: xr.Dataset, lsoa_share: np.ndarray, total_pop: np.ndarray
) -> xr.Dataset:
    """SII/RII across IMD deciles 1..10 (most to least deprived) per area x week.

    No population by IMD decile exists on LAD21, and LSOAs hold roughly equal numbers of
    people, so the decile population of an area is its population times its share of
    LSOAs in that decile (``lsoa_share``, area x decile). Case rates use those weights;
    positivity uses people_tested by decile. Deciles with no weight drop out.
    """
    deciles = imd.sel(imd_decile=[str(d) for d in range(1, 11)])
    pos = deciles["people_positive"].values.astype(float)
    tested = deciles["people_tested"].values.astype(float)
    pop = (lsoa_share * total_pop[:, None])[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(pop > 0, pos / pop * PER_100K, 0.0)
        share = np.where(tested > 0, pos / tested * 100, 0.0)
        out = {}
        for name, y, weight in (
            ("case_rate_per_100k", rate, np.broadcast_to(pop, rate.shape)),
            ("positivity_pct", share, tested),
        ):
            sii, rii, _ = stats.sii_fast(y, weight, axis=-1)
            out[f"sii_{name}"] = (("area", "week"), np.where(np.isfinite(sii), sii, np.nan))
            out[f"rii_{name}"] = (("area", "week"), np.where(np.isfinite(rii), rii, np.nan))
    coords = {k: v for k, v in imd.coords.items() if k != "imd_decile"}
    return xr.Dataset(out, coords=coords)


def set_measure_attrs(ds: xr.Dataset) -> xr.Dataset:
    """``units`` and ``long_name`` on every variable (limits named after their measure)."""
    for name in ds.data_vars:
        base, bound = str(name), ""
        for suffix in ("_lower", "_upper"):
            if base.endswith(suffix):
                base, bound = base[: -len(suffix)], suffix[1:]
        units, long_name = MEASURE_ATTRS.get(base, ("", base))
        if bound:
            long_name = f"{bound} 95% confidence limit of: {long_name}"
        ds[name].attrs.update(units=units, long_name=long_name)
    return ds
