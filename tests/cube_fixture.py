"""A fake profile cube that follows the cube contract (docs/architecture.md) exactly.

Plots, the explorer and the report pack are developed and tested against it, so they do
not need a store or the real cube builder. Counts are random but plausible and seeded:
LTLA counts are drawn, and UTLAs, regions and England are their exact sums. Derived
measures (rates, positivity, CIs, DSR, SII, significance) come from ``lds_dask.cube.stats``.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import xarray as xr

from lds_dask.contract import refdata
from lds_dask.contract.bands import ETHNICITIES, LDS_BANDS, SEXES, UNKNOWN, esp_to_lds
from lds_dask.cube import stats
from lds_dask.cube.arrays import area_table
from lds_dask.cube.measures import derive_rate_measures

START_WEEK = "2020-10-05"  # 8 weeks from here span the tiers and the second lockdown
COUNTS = ["tests", "positive_tests", "people_tested", "people_positive"]
RATES = ["testing_rate_per_100k", "case_rate_per_100k", "positivity_pct"]
DECILES = [str(d) for d in range(1, 11)] + [UNKNOWN]
QUINTILES = [str(q) for q in range(1, 6)] + [UNKNOWN]
UNITS = {
    "tests": ("tests", "Tests (all types)"),
    "positive_tests": ("tests", "Positive tests (all types)"),
    "people_tested": ("people", "People tested (PCR, person-weeks)"),
    "people_positive": ("people", "People testing positive (PCR, person-weeks)"),
    "population": ("people", "Mid-2020 population"),
    "testing_rate_per_100k": ("per 100,000 population", "People tested per 100,000"),
    "case_rate_per_100k": ("per 100,000 population", "Cases per 100,000"),
    "positivity_pct": ("%", "PCR positivity"),
    "case_rate_dsr_per_100k": ("per 100,000 (ESP2013)", "Age-standardised case rate"),
    "survey_prevalence_pct": ("%", "Survey prevalence"),
    "positivity_to_prevalence_ratio": ("ratio", "Positivity / survey prevalence"),
}
STATUS_MEASURES = COUNTS + RATES


def list_areas() -> pl.DataFrame:
    """The cube's area axis in contract order (the real cube's own table)."""
    return area_table()


def _membership(areas: pl.DataFrame) -> np.ndarray:
    """Matrix (all areas x LTLAs): 1 where the LTLA belongs to the area, for exact sums."""
    ltla = areas.filter(pl.col("area_type") == "ltla")
    member = np.zeros((areas.height, ltla.height))
    for i, (code, kind) in enumerate(zip(areas["area"], areas["area_type"], strict=True)):
        member[i] = {
            "ltla": ltla["area"] == code,
            "utla": ltla["utla_code"] == code,
            "region": ltla["region_code"] == code,
        }.get(kind, np.ones(ltla.height))
    return member


def _draw_ltla_totals(rng, n_la: int, weeks: int) -> dict[str, np.ndarray]:
    """LTLA x week people tested / positive and tests, with a smooth epidemic wave per LA."""
    pop = refdata.las()["population"].to_numpy().astype(float)
    t = np.arange(weeks)
    peak = rng.uniform(0, weeks, n_la)[:, None]
    p = np.clip(
        0.06 * np.exp(-(((t - peak) / (weeks / 2 + 1)) ** 2)) * rng.uniform(0.4, 2, (n_la, 1)),
        0.003,
        0.3,
    )
    tested = rng.poisson(pop[:, None] * rng.uniform(0.02, 0.05, (n_la, 1)) * np.ones(weeks))
    positive = rng.binomial(tested, p)
    tests = tested + rng.poisson(tested * 0.35)
    return {
        "people_tested": tested,
        "people_positive": positive,
        "tests": tests,
        "positive_tests": positive + rng.binomial(tests - tested, p),
    }


def _split(totals: dict[str, np.ndarray], k: int, rng) -> dict[str, np.ndarray]:
    """Split LTLA x week totals over k categories (last axis), keeping every sum exact.

    Positives and negatives are split separately, so positives never exceed tested.
    """
    w_pos, w_neg = rng.dirichlet(np.full(k, 5.0)), rng.dirichlet(np.full(k, 5.0))
    out = {}
    for pos, tot in (("people_positive", "people_tested"), ("positive_tests", "tests")):
        p = rng.multinomial(totals[pos], w_pos)
        out[pos], out[tot] = p, p + rng.multinomial(totals[tot] - totals[pos], w_neg)
    return out


def _ltla_population_by_age_sex() -> np.ndarray:
    """LTLA x LDS age band (+unknown) x sex (F, M, U) population; NaN for unknown/U."""
    pop = (
        refdata.population()
        .with_columns(
            age_band=pl.col("age").map_elements(lambda a: esp_to_lds(f"{min(a, 90)}-"), pl.String)
        )
        .group_by("area_code", "age_band", "sex")
        .agg(pl.col("population").sum())
    )
    out = np.full((309, len(LDS_BANDS) + 1, 3), np.nan)
    codes = {c: i for i, c in enumerate(refdata.las()["la_code"])}
    bands = {b: i for i, b in enumerate(LDS_BANDS)}
    for code, band, sex, value in pop.filter(pl.col("area_code").is_in(list(codes))).iter_rows():
        out[codes[code], bands[band], SEXES.index(sex)] = value
    return out


def _set_attrs(ds: xr.Dataset) -> xr.Dataset:
    """units and long_name on every measure (CI bounds inherit their measure's)."""
    for name in ds.data_vars:
        base = name.removesuffix("_lower").removesuffix("_upper")
        if base in UNITS:
            units, long_name = UNITS[base]
            suffix = {"_lower": " (95% lower)", "_upper": " (95% upper)"}.get(name[len(base) :], "")
            ds[name].attrs = {"units": units, "long_name": long_name + suffix}
    return ds


def _node(
    counts: dict[str, np.ndarray],
    pop: np.ndarray,
    member: np.ndarray,
    coords: dict,
    dims: list[str],
) -> xr.Dataset:
    """Aggregate LTLA arrays (LTLA first) to every area; one node with derived measures.

    `pop` is LTLA x categories (no week axis); NaN where no denominator exists.
    """

    def agg(a):
        return np.tensordot(member, a, axes=(1, 0))

    data = {k: (dims, np.rint(agg(v.astype(float))).astype(np.int64)) for k, v in counts.items()}
    pop_all = np.where(np.isnan(pop).all(axis=0), np.nan, agg(np.nan_to_num(pop)))
    shape = data["tests"][1].shape
    data["population"] = (dims, np.broadcast_to(np.expand_dims(pop_all, 1), shape).copy())
    return _set_attrs(derive_rate_measures(xr.Dataset(data, coords=coords)))


def _area_coords(areas: pl.DataFrame, weeks: np.ndarray) -> dict:
    coords = {"area": areas["area"].to_numpy().astype(str), "week": weeks}
    for name in ("area_name", "area_type", "region_code", "utla_code"):
        coords[name] = ("area", areas[name].to_numpy().astype(str))
    return coords


def _breakdown_nodes(rng, totals, member, coords) -> dict[str, xr.Dataset]:
    """Every breakdown node, each splitting the same LTLA totals (so margins agree)."""
    pop_as = _ltla_population_by_age_sex()
    n_as = len(LDS_BANDS) + 1
    flat = _split(totals, n_as * 3, rng)
    as_counts = {k: v.reshape(*v.shape[:2], n_as, 3) for k, v in flat.items()}
    bands = LDS_BANDS + [UNKNOWN]
    dims2 = ["area", "week"]
    nodes = {
        "age_band_sex": _node(
            as_counts,
            pop_as,
            member,
            coords | {"age_band": bands, "sex": SEXES},
            dims2 + ["age_band", "sex"],
        ),
        "age_band": _node(
            {k: v.sum(-1) for k, v in as_counts.items()},
            np.where(np.isnan(pop_as).all(-1), np.nan, np.nansum(pop_as, -1)),
            member,
            coords | {"age_band": bands},
            dims2 + ["age_band"],
        ),
        "sex": _node(
            {k: v.sum(-2) for k, v in as_counts.items()},
            np.where(np.isnan(pop_as).all(-2), np.nan, np.nansum(pop_as, -2)),
            member,
            coords | {"sex": SEXES},
            dims2 + ["sex"],
        ),
    }
    for name, cats in (
        ("ethnicity", ETHNICITIES),
        ("imd_decile", DECILES),
        ("ahah_quintile", QUINTILES),
    ):
        nodes[name] = _node(
            _split(totals, len(cats), rng),
            np.full((309, len(cats)), np.nan),
            member,
            coords | {name: cats},
            dims2 + [name],
        )
    dec = nodes["imd_decile"][COUNTS]
    quint = [
        dec.sel(imd_decile=[str(2 * q - 1), str(2 * q)]).sum("imd_decile") for q in range(1, 6)
    ]
    quint = xr.concat([*quint, dec.sel(imd_decile=UNKNOWN, drop=True)], "imd_quintile")
    quint = quint.assign_coords(imd_quintile=np.array(QUINTILES)).transpose(
        "area", "week", "imd_quintile"
    )
    quint["population"] = xr.full_like(quint["tests"], np.nan, dtype=float)
    nodes["imd_quintile"] = _set_attrs(derive_rate_measures(quint))
    return nodes


def _esp_lds() -> np.ndarray:
    """ESP2013 aggregated to the LDS bands (the standard for the fixture's DSR)."""
    esp = refdata.esp2013().with_columns(
        band=pl.col("age_band").map_elements(esp_to_lds, pl.String)
    )
    sums = dict(esp.group_by("band").agg(pl.col("esp_population").sum()).iter_rows())
    return np.array([sums[b] for b in LDS_BANDS], float)


def _add_total_extras(total: xr.Dataset, age: xr.Dataset, rng) -> xr.Dataset:
    """DSR, significance vs England/region and survey prevalence on /total."""
    known = age.sel(age_band=LDS_BANDS)
    value, lower, upper = stats.dsr(
        known["people_positive"].values.astype(float), known["population"].values, _esp_lds()
    )
    for suffix, arr in (("", value), ("_lower", lower), ("_upper", upper)):
        total[f"case_rate_dsr_per_100k{suffix}"] = (("area", "week"), arr)
    rate = total["case_rate_per_100k"]
    eng = rate.sel(area=refdata.ENGLAND_CODE, drop=True)
    reg_codes = xr.where(total["region_code"] == "", refdata.ENGLAND_CODE, total["region_code"])
    reg = rate.sel(area=reg_codes.values).assign_coords(area=total["area"].values)
    for name, ref in (("sig_vs_england", eng), ("sig_vs_region", reg)):
        sig = stats.significance(
            total["case_rate_per_100k_lower"], total["case_rate_per_100k_upper"], ref
        )
        total[name] = sig.astype(str)
    total["sig_vs_region"] = total["sig_vs_region"].where(
        total["area_type"].isin(["ltla", "utla"]), "not compared"
    )
    truth = total["positivity_pct"] * rng.uniform(0.05, 0.25, total["positivity_pct"].shape)
    sample = xr.full_like(total["tests"], 2000).where(total["area_type"] != "ltla", 300)
    x = np.rint(truth / 100 * sample)
    value, lower, upper = stats.proportion_ci(x, sample, multiplier=100)
    total["survey_prevalence_pct"] = value
    total["survey_prevalence_pct_lower"], total["survey_prevalence_pct_upper"] = lower, upper
    total["positivity_to_prevalence_ratio"] = total["positivity_pct"] / value.where(value > 0)
    return _set_attrs(total)


def _inequality(dec: xr.Dataset) -> xr.Dataset:
    """SII/RII of case rate and positivity across IMD deciles 1..10 (1 = most deprived).

    The fixture has no decile populations, so people tested stands in as the weight.
    """
    d = dec.sel(imd_decile=DECILES[:10])
    weights = d["people_tested"].values.astype(float) + 1
    pos = d["positivity_pct"].fillna(0).values
    case = d["people_positive"].values / weights * 1e5
    out = {}
    for name, values in (("case_rate_per_100k", case), ("positivity_pct", pos)):
        sii, rii, _ = stats.sii_fast(values, weights)
        out[f"sii_{name}"] = (("area", "week"), sii)
        out[f"rii_{name}"] = (("area", "week"), rii)
    ds = xr.Dataset(out, coords={k: v for k, v in dec.coords.items() if k != "imd_decile"})
    for name in ds.data_vars:
        units = "ratio" if name.startswith("rii") else UNITS[name[4:]][0]
        ds[name].attrs = {
            "units": units,
            "long_name": f"{name[:3].upper()} of {UNITS[name[4:]][1]}",
        }
    return ds


def _neighbours(areas: pl.DataFrame, rng) -> np.ndarray:
    """15 nearest LTLAs by (log population, mean IMD decile, noise); '' for other areas."""
    las = refdata.las()
    imd = refdata.lsoas().group_by("la_code").agg(pl.col("imd_decile").mean())
    feats = (
        las.join(imd, on="la_code", how="left")
        .select(pl.col("population").log(), pl.col("imd_decile"))
        .to_numpy()
    )
    feats = (feats - feats.mean(0)) / feats.std(0) + rng.normal(0, 0.1, feats.shape)
    dist = ((feats[:, None] - feats[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    nearest = np.asarray(las["la_code"])[np.argsort(dist, axis=1)[:, :15]]
    out = np.full((areas.height, 15), "", dtype=object)
    out[:309] = nearest
    return out.astype(str)


LSOA_LAS = ["E06000001", "E06000002", "E06000003", "E06000004"]  # 352 real LSOAs
LSOA_PERIODS = ["wave_1", "wave_2"]


def _lsoa_node(rng) -> xr.Dataset:
    """The /lsoa node: real LSOAs of a few LAs x two waves, with LA, IMD and AHAH deciles."""
    lsoa = refdata.lsoas().filter(pl.col("la_code").is_in(LSOA_LAS)).sort("lsoa11_code")
    n = lsoa.height
    risk = 0.04 + 0.006 * (10 - lsoa["imd_decile"].to_numpy())[:, None]
    tested = rng.poisson(rng.uniform(150, 600, (n, 1)) * np.ones(2))
    positive = rng.binomial(tested, np.clip(risk * np.array([0.5, 1.5]), 0, 1))
    ds = xr.Dataset(
        {
            "people_tested": (("lsoa", "period"), tested.astype(np.int64)),
            "people_positive": (("lsoa", "period"), positive.astype(np.int64)),
            "tests": (("lsoa", "period"), (tested + rng.poisson(tested * 0.3)).astype(np.int64)),
        },
        coords={
            "lsoa": lsoa["lsoa11_code"].to_numpy().astype(str),
            "period": LSOA_PERIODS,
            "period_start": ("period", np.array(["2020-03-02", "2020-08-31"], "datetime64[ns]")),
            "la_code": ("lsoa", lsoa["la_code"].to_numpy().astype(str)),
            "imd_decile": ("lsoa", lsoa["imd_decile"].to_numpy().astype(np.int64)),
            "ahah_decile": ("lsoa", rng.integers(1, 11, n).astype(np.int64)),
        },
    )
    value, lower, upper = stats.proportion_ci(
        ds["people_positive"].astype(float), ds["people_tested"].astype(float), multiplier=100
    )
    ds["positivity_pct"], ds["positivity_pct_lower"], ds["positivity_pct_upper"] = (
        value,
        lower,
        upper,
    )
    return _set_attrs(ds)


def add_fake_status(ds: xr.Dataset) -> xr.Dataset:
    """A stand-in disclosure view: cells with 1..9 people positive are primary-suppressed.

    Suppressed values become NaN (counts turn float) and every count/rate measure gets a
    ``<measure>_status`` int8 (0 ok, 1 suppressed_primary), as the contract describes.
    """
    small = (ds["people_positive"] > 0) & (ds["people_positive"] < 10)
    hit = {"people_positive", "positive_tests", "case_rate_per_100k", "positivity_pct"}
    for name in STATUS_MEASURES:
        if name not in ds:
            continue
        sup = small if name in hit else xr.zeros_like(small)
        for var in (name, f"{name}_lower", f"{name}_upper"):
            if var in ds:
                ds[var] = ds[var].astype(float).where(~sup)
        ds[f"{name}_status"] = sup.astype(np.int8)
    return ds


def make_fake_cube(
    weeks: int = 8, seed: int = 0, with_status: bool = False, start: str = START_WEEK
) -> xr.DataTree:
    """A seeded fake cube for all 309 LTLAs, county UTLAs, 9 regions and England.

    Follows docs/architecture.md: nodes /total, /age_band, /sex, /ethnicity, /imd_decile,
    /imd_quintile, /ahah_quintile, /age_band_sex, /inequality, /lsoa and root
    ``neighbours(area, rank)``. ``with_status=True`` gives a disclosure-controlled view.
    """
    rng = np.random.default_rng(seed)
    areas = list_areas()
    member = _membership(areas)
    week_axis = np.datetime64(start, "ns") + np.arange(weeks) * np.timedelta64(7, "D")
    coords = _area_coords(areas, week_axis.astype("datetime64[ns]"))
    totals = _draw_ltla_totals(rng, 309, weeks)
    pop = refdata.las()["population"].to_numpy().astype(float)
    nodes = _breakdown_nodes(rng, totals, member, coords)
    total = _add_total_extras(
        _node(totals, pop, member, coords, ["area", "week"]), nodes["age_band"], rng
    )
    nodes = {"total": total, **nodes, "inequality": _inequality(nodes["imd_decile"])}
    if with_status:
        nodes = {k: add_fake_status(v) if "people_positive" in v else v for k, v in nodes.items()}
    nodes["lsoa"] = _lsoa_node(rng)
    root = xr.Dataset(
        {"neighbours": (("area", "rank"), _neighbours(areas, rng))},
        coords={"area": coords["area"], "rank": np.arange(1, 16)},
        attrs={
            "attribution": refdata.ATTRIBUTION,
            "synthetic": "fake test cube",
            "disclosure_controlled": int(with_status),
        },
    )
    tree = xr.DataTree.from_dict({"/": root, **{f"/{k}": v for k, v in nodes.items()}})
    return _object_strings(tree)


def _object_strings(ds: xr.Dataset) -> xr.Dataset:
    """Fixed-width numpy strings as object (zarr v3's specified variable-length string)."""
    return ds.map_over_datasets(
        lambda d: d.assign(
            {k: v.astype(object) for k, v in d.variables.items() if v.dtype.kind == "U"}
        )
    )


def write_fake_cube(path, **kwargs) -> xr.DataTree:
    """Write :func:`make_fake_cube` (same keyword arguments) to a zarr store at `path`."""
    tree = make_fake_cube(**kwargs)
    with warnings.catch_warnings():  # zarr notes consolidated metadata is not in the v3 spec
        warnings.simplefilter("ignore")
        tree.to_zarr(path, mode="w", consolidated=True)
    return tree
