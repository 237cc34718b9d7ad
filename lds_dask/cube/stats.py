"""Public-health indicator statistics, vectorised over numpy / xarray / dask arrays.

A port of the methods in UKHSA's R package PHEindicatormethods (the package OHID
Fingertips uses), so that profile numbers match the published ones:

* proportions with Wilson score limits  (``phe_proportion``, ``wilson_lower/upper``)
* counts with Byar's limits             (``byars_lower/upper``)
* crude rates: Byar's for x >= 10, exact Poisson below 10 (``phe_rate``)
* directly standardised rates, Dobson limits, NA for total count < 10 (``calculate_dsr``)
* indirectly standardised rates / ratios (``calculate_ISRate`` / ``calculate_ISRatio``)
* slope and relative index of inequality with Monte-Carlo limits (``phe_sii``)
* funnel-plot control limits (``calculate_funnel_limits``)

The checked reference vectors are the package's own test data
(``tests/data/phe_indicator_methods``). Element-wise functions use only ufuncs,
arithmetic and two small helpers (``_where``/``_sum``) that dispatch to xarray when
given DataArrays, so they work unchanged on numpy, dask and xarray inputs.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import special

__all__ = [
    "byars_ci",
    "dsr",
    "exact_poisson_ci",
    "funnel_limits",
    "isr",
    "proportion_ci",
    "rate_ci",
    "significance",
    "sii",
    "sii_fast",
    "wilson_ci",
]

_SE_Z = special.ndtri(0.975)  # phe_sii derives SEs from 95% limits, whatever `confidence` is


# --- helpers -----------------------------------------------------------------------------


def _is_xr(*objs) -> bool:
    return any(type(o).__module__.split(".")[0] == "xarray" for o in objs)


def _where(cond, a, b):
    """np.where that keeps xarray objects as xarray (np.where would strip them)."""
    if _is_xr(cond, a, b):
        import xarray as xr

        return xr.where(cond, a, b)
    return np.where(cond, a, b)


def _sum(a, axis, keepdims=False):
    """NaN-propagating sum over `axis` (an int, or a dimension name for xarray; xarray
    results broadcast back by name, so `keepdims` only matters for plain arrays)."""
    if _is_xr(a):
        return a.sum(dim=axis if isinstance(axis, str) else a.dims[axis], skipna=False)
    return np.sum(a, axis=axis, keepdims=keepdims)


def _broadcast_like(a, like):
    if _is_xr(a, like):
        import xarray as xr

        return xr.broadcast(a, like)[0]
    return np.broadcast_to(a, np.broadcast_shapes(np.shape(a), np.shape(like)))


def _na_zero(a):
    """R's ``na.zero``: missing counts count as zero."""
    return _where(np.isnan(a), 0.0, a)


def _conf(confidence: float) -> float:
    """Validate a confidence level given as 0.9-1 or 90-100 (as PHEindicatormethods)."""
    c = float(confidence)
    if not (0.9 <= c <= 1 or 90 <= c <= 100):
        raise ValueError("confidence level must be between 90 and 100 or between 0.9 and 1")
    return c / 100 if c > 1 else c


def _z(confidence: float) -> float:
    c = _conf(confidence)
    return special.ndtri(c + (1 - c) / 2)


# --- proportions, counts, rates ----------------------------------------------------------


def wilson_ci(x, n, confidence=0.95):
    """Wilson score limits (0..1) for x successes out of n (``wilson_lower/upper``).

    Wilson rather than the normal approximation because it stays inside 0..1 and is
    accurate for small counts; it is what Fingertips publishes for proportions.
    """
    if _conf(confidence) == 1:
        return 0.0 * x, 0.0 * x + 1.0
    z = _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = z * np.sqrt(z**2 + 4 * x * (1 - x / n))
        return (2 * x + z**2 - spread) / (2 * (n + z**2)), (2 * x + z**2 + spread) / (
            2 * (n + z**2)
        )


def proportion_ci(x, n, multiplier=1, confidence=0.95):
    """Proportion x/n with Wilson limits, all times `multiplier` (``phe_proportion``)."""
    lower, upper = wilson_ci(x, n, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        return x / n * multiplier, lower * multiplier, upper * multiplier


def byars_ci(x, confidence=0.95):
    """Byar's approximation to the Poisson limits of a count (``byars_lower/upper``).

    Lower limits that come out negative (tiny counts at high confidence) are NaN, as in R.
    """
    z = _z(confidence)
    xl = _where(x > 0, x, np.nan)  # x = 0 is NaN in R too (0 * -Inf); avoids lazy warnings
    lower = xl * (1 - 1 / (9 * xl) - z / (3 * np.sqrt(xl))) ** 3
    with np.errstate(invalid="ignore"):
        upper = (x + 1) * (1 - 1 / (9 * (x + 1)) + z / (3 * np.sqrt(x + 1))) ** 3
    return _where(lower < 0, np.nan, lower), upper


def exact_poisson_ci(x, confidence=0.95):
    """Exact (chi-square / gamma) Poisson limits of a count: qchisq(a/2, 2x)/2 and
    qchisq(1-a/2, 2x+2)/2, written with the regularised incomplete-gamma inverses
    (ufuncs, so they vectorise over xarray/dask). The lower limit of 0 is 0."""
    alpha = 1 - _conf(confidence)
    with np.errstate(invalid="ignore"):
        lower = _where(x == 0, 0.0, special.gammaincinv(x, alpha / 2))
        return lower, special.gammainccinv(x + 1, alpha / 2)


def _poisson_ci(x, confidence):
    """Exact limits below 10 events, Byar's from 10 up: the PHEindicatormethods rule."""
    el, eu = exact_poisson_ci(x, confidence)
    bl, bu = byars_ci(x, confidence)
    small = x < 10
    return _where(small, el, bl), _where(small, eu, bu)


def rate_ci(x, denominator, multiplier=100_000, confidence=0.95):
    """Limits of the crude rate x/denominator*multiplier (``phe_rate``). Returns (lower, upper)."""
    lower, upper = _poisson_ci(x, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        return lower / denominator * multiplier, upper / denominator * multiplier


# --- standardisation ---------------------------------------------------------------------


def dsr(counts, pops, std_pops, multiplier=100_000, confidence=0.95, axis=-1):
    """Directly standardised rate with Dobson limits (``calculate_dsr``).

    `counts`/`pops` carry the age bands on `axis` (any leading/trailing axes, e.g.
    area x week x band, are broadcast); `std_pops` must broadcast against them (a 1-D
    ESP for ``axis=-1``). Missing counts count as 0. Dobson: the limits of the total
    count (Byar's) are scaled by sqrt(var(DSR)/total). All three outputs are NaN where
    the total count is below 10, where PHE/OHID judge DSRs unreliable.
    """
    x = _na_zero(counts)
    std = _broadcast_like(std_pops, pops)
    total = _sum(x, axis)
    std_total = _sum(std, axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = _sum(x * std / pops, axis) / std_total * multiplier
        var = _sum(x * (std / pops) ** 2, axis) / std_total**2
        lo_count, hi_count = byars_ci(total, confidence)
        scale = np.sqrt(var / _where(total > 0, total, np.nan)) * multiplier
        lower, upper = value + scale * (lo_count - total), value + scale * (hi_count - total)
    ok = total >= 10
    return tuple(_where(ok, v, np.nan) for v in (value, lower, upper))


def isr(
    observed_counts,
    pops,
    ref_counts,
    ref_pops,
    multiplier=100_000,
    confidence=0.95,
    axis=-1,
    ratio=False,
    observed_total=None,
):
    """Indirectly standardised rate (``calculate_ISRate``) or ratio (``calculate_ISRatio``).

    Expected = sum over bands of ref_count/ref_pop * pop (missing -> 0); the observed
    total O (summed over `axis`, or `observed_total` if given) gets exact Poisson limits
    below 10 and Byar's from 10. The rate is O/E * reference rate * `multiplier`; with
    ``ratio=True`` it is O/E * `multiplier` (use 1 or 100, R's ``refvalue``).
    Returns (value, lower, upper).
    """
    obs = _sum(_na_zero(observed_counts), axis) if observed_total is None else observed_total
    rc, rp = _broadcast_like(ref_counts, pops), _broadcast_like(ref_pops, pops)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = _sum(_na_zero(rc) / rp * _na_zero(pops), axis)
        ref = multiplier if ratio else _sum(_na_zero(rc), axis) / _sum(rp, axis) * multiplier
        lower, upper = _poisson_ci(obs, confidence)
        return obs / expected * ref, lower / expected * ref, upper / expected * ref


# --- inequality: SII / RII ---------------------------------------------------------------


def _fwd(v, value_type):
    """phe_sii's transform: identity (0), log for rates (1), logit for proportions (2)."""
    return v if value_type == 0 else np.log(v) if value_type == 1 else np.log(v / (1 - v))


def _inv(v, value_type):
    return v if value_type == 0 else np.exp(v) if value_type == 1 else special.expit(v)


def _ridit_fit(y, pops, axis=-1):
    """Weighted LS of y on the cumulative-population midpoint b (the ridit), weights
    a = pop share: phe_sii's ``lm(yvals ~ sqrt_a + b_sqrt_a - 1)``. Returns (intercept, slope)."""
    cum = pops.cumsum(dim=axis) if isinstance(axis, str) else np.cumsum(pops, axis=axis)
    total = _sum(pops, axis, keepdims=True)
    a = pops / total
    b = (cum - pops / 2) / total
    bbar, ybar = _sum(a * b, axis, keepdims=True), _sum(a * y, axis, keepdims=True)
    slope = _sum(a * (b - bbar) * (y - ybar), axis) / _sum(a * (b - bbar) ** 2, axis)
    return _sum(a * y, axis) - slope * _sum(a * b, axis), slope


def _sii_outputs(b0, b1, value_type, transform, multiplier):
    """(sii, rii, intercept) from fitted coefficients, as phe_sii reports them."""
    if not transform:
        rii = (b0 + b1) / b0
        return multiplier * b1, 1 / rii if multiplier < 0 else rii, b0
    y0, y1 = _inv(b0, value_type), _inv(b0 + b1, value_type)
    rii = y1 / y0
    return (y1 - y0) * multiplier, 1 / rii if multiplier < 0 else rii, y0 * abs(multiplier)


def sii_fast(values, pops, axis=-1, value_type=0, transform=False, multiplier=1):
    """Point SII, RII and intercept over quantiles on `axis`, fully vectorised.

    For cube-wide use (area x week x quantile); no confidence limits. Same point
    estimates as :func:`sii`. With ``transform=True`` rates (value_type 1) are fitted on
    the log scale and proportions (2) on the logit scale, then transformed back.
    """
    y = _fwd(values, value_type) if transform else values
    with np.errstate(divide="ignore", invalid="ignore"):
        return _sii_outputs(*_ridit_fit(y, pops, axis), value_type, transform, multiplier)


def _check_sii_inputs(values, pops, lower_cl, upper_cl, se, value_type, transform):
    if value_type not in (0, 1, 2):
        raise ValueError("value_type should be 0, 1 or 2")
    if transform and value_type == 0:
        raise ValueError("value_type should be 1 or 2 when transform is true")
    if se is None and (lower_cl is None or upper_cl is None):
        raise ValueError("sii requires either lower_cl and upper_cl, or se")
    if transform and se is not None:
        raise ValueError("sii requires se to be missing when transform is true")
    q = values.shape[-1]
    if not 5 <= q <= 100:
        raise ValueError("Number of quantiles must be between 5 and 100")
    if q > 10:
        warnings.warn(
            "Small values can make SII unstable when using a large number of quantiles",
            UserWarning,
            stacklevel=3,
        )
    if np.any(~(pops > 0)):
        raise ValueError("some groups have a zero, negative or missing population")
    if np.any(np.isnan(values)):
        raise ValueError("missing indicator values")
    if se is not None and np.any(~(se >= 0)):
        raise ValueError("negative or missing standard errors")
    if se is None and np.any(np.isnan(lower_cl) | np.isnan(upper_cl)):
        raise ValueError("missing lower or upper confidence limits")
    if value_type == 2 and np.any((values < 0) | (values > 1)):
        raise ValueError("value proportions are not all between 0 and 1")
    cls = [] if se is not None else [lower_cl, upper_cl]
    if value_type == 2 and any(np.any((c < 0) | (c > 1)) for c in cls):
        raise ValueError("confidence limit proportions are not all between 0 and 1")


def _order_stats(samples, confidence, repetitions):
    """phe_sii's limits: the round(reps*(1-cv))-th and round(reps*cv)-th smallest
    samples (1-based), cv = confidence + (1-confidence)/2."""
    cv = confidence + (1 - confidence) / 2
    lo, hi = (max(round(repetitions * p), 1) - 1 for p in (1 - cv, cv))
    part = np.partition(samples, [lo, hi])
    return part[lo], part[hi]


def _sii_group(values, pops, se, value_type, transform, multiplier, repetitions, confs, rng):
    """One group: point estimates plus Monte-Carlo limits for each confidence level."""
    tv = _fwd(values, value_type)
    b0, b1 = _ridit_fit(tv if transform else values, pops)
    out = dict(
        zip(
            ("sii", "rii", "intercept"),
            _sii_outputs(b0, b1, value_type, transform, multiplier),
            strict=True,
        )
    )
    # Sample each quantile's value on its (log/logit) scale, refit every replicate at
    # once: coefficients = (X'WX)^-1 X'W y, one (2 x Q) @ (Q x reps) product.
    sqrt_a = np.sqrt(pops / pops.sum())
    design = np.stack([sqrt_a, (np.cumsum(pops) - pops / 2) / pops.sum() * sqrt_a], axis=1)
    hat = np.linalg.solve(design.T @ design, design.T)
    draws = rng.standard_normal((repetitions, values.size)) * se + tv
    ys = draws if transform else _inv(draws, value_type)
    c0, c1 = (ys * sqrt_a) @ hat.T[:, 0], (ys * sqrt_a) @ hat.T[:, 1]
    for key in ("sii_lower", "sii_upper", "rii_lower", "rii_upper"):
        out[key] = []
    for conf in confs:
        if not transform:
            lims = [_order_stats(c1 * multiplier, conf, repetitions)]
            rii = (c0 + c1) / c0
            lims.append(_order_stats(1 / rii if multiplier < 0 else rii, conf, repetitions))
        else:  # limits of the transformed slope, pivoted about the fitted midpoint x = 0.5
            half = b0 + b1 / 2
            ends = [
                _sii_outputs(half - s / 2, s, value_type, True, multiplier)[:2]
                for s in _order_stats(c1, conf, repetitions)
            ]
            order = slice(None, None, -1) if multiplier < 0 else slice(None)
            lims = [tuple(e[k] for e in ends)[order] for k in (0, 1)]
        for (lo, hi), name in zip(lims, ("sii", "rii"), strict=True):
            out[f"{name}_lower"].append(lo)
            out[f"{name}_upper"].append(hi)
    return out


def sii(
    values,
    populations,
    lower_cl=None,
    upper_cl=None,
    se=None,
    *,
    value_type=0,
    transform=False,
    multiplier=1,
    repetitions=100_000,
    confidence=0.95,
    seed=None,
):
    """Slope and relative index of inequality with Monte-Carlo limits (``phe_sii``).

    Quantiles (ordered most to least deprived) run along the last axis; leading axes
    are groups, looped over (meant for a handful; use :func:`sii_fast` for cubes).
    The SE of each quantile is `se` or, if absent, derived from its 95% limits on the
    log (rates, value_type 1) or logit (proportions, 2) scale. Each replicate draws
    every quantile from N(value, SE) on that scale and refits the ridit regression;
    the limits are order statistics of the replicate SIIs/RIIs. With ``transform=True``
    the regression itself is on the log/logit scale (values and limits transformed
    back). A negative `multiplier` flips polarity (RII inverted; R tests `< 1` instead of
    `< 0` for transformed rates, a slip not copied). Limits cannot be bit-identical to
    R's (different RNG); `seed` makes them reproducible.

    Returns a dict of arrays: ``sii``, ``rii``, ``intercept`` (shape: the group axes)
    and ``sii_lower``, ``sii_upper``, ``rii_lower``, ``rii_upper`` (with a trailing axis
    over `confidence` when a sequence of levels is given).
    """
    values, pops = np.asarray(values, float), np.asarray(populations, float)
    arrs = [
        None if a is None else np.broadcast_to(np.asarray(a, float), values.shape)
        for a in (lower_cl, upper_cl, se)
    ]
    _check_sii_inputs(values, pops, *arrs, value_type, transform)
    if repetitions < 1000:
        raise ValueError("number of repetitions must be 1000 or greater")
    confs = [_conf(c) for c in np.atleast_1d(confidence)]
    if arrs[2] is None:
        arrs[2] = (_fwd(arrs[1], value_type) - _fwd(arrs[0], value_type)) / (2 * _SE_Z)
    rng = np.random.default_rng(seed)
    groups = [
        _sii_group(v, p, s, value_type, transform, multiplier, repetitions, confs, rng)
        for v, p, s in zip(
            values.reshape(-1, values.shape[-1]),
            pops.reshape(-1, values.shape[-1]),
            arrs[2].reshape(-1, values.shape[-1]),
            strict=True,
        )
    ]
    lead = values.shape[:-1] + (() if np.ndim(confidence) == 0 else (len(confs),))
    return {
        k: np.reshape(
            [g[k] for g in groups], lead if k.endswith(("lower", "upper")) else values.shape[:-1]
        )
        for k in groups[0]
    }


# --- comparison --------------------------------------------------------------------------


def significance(lower, upper, comparator=None, comparator_lower=None, comparator_upper=None):
    """Fingertips-style comparison: 'higher' / 'similar' / 'lower' / 'not compared'.

    Default rule (Fingertips' benchmark comparison): 'higher' when the area's lower
    limit is above the comparator's point value, 'lower' when its upper limit is below
    it, else 'similar'. If `comparator` is None the comparator's own limits are used
    instead (non-overlapping intervals). Any NaN input gives 'not compared'.
    """
    if comparator is not None:
        hi, lo, ref = comparator, comparator, np.isnan(comparator)
    else:
        hi, lo = comparator_upper, comparator_lower
        ref = np.isnan(comparator_lower) | np.isnan(comparator_upper)
    out = _where(lower > hi, "higher", _where(upper < lo, "lower", "similar"))
    return _where(np.isnan(lower) | np.isnan(upper) | ref, "not compared", out)


def funnel_limits(size, average, statistic="proportion", multiplier=100):
    """Funnel-plot control limits around `average` (``calculate_funnel_limits``).

    statistic 'proportion': `size` is the denominator, `average` the overall
    proportion (0..1); limits are the proportions whose Wilson interval just reaches
    the average (closed form, R's ``sigma_adjustment``), clipped to 0..multiplier.
    statistic 'rate': `size` is the number of events (R's x axis) and `average` the
    overall rate per person; limits are exact Poisson (R's ``poisson_funnel`` bisection,
    here in closed form). Returns dict lower_2s, upper_2s (95%), lower_3s, upper_3s
    (99.8%) in `multiplier` units.
    """
    out = {}
    for tag, p in (("2s", 0.975), ("3s", 0.999)):
        if statistic == "proportion":
            z2, n, av = special.ndtri(p) ** 2, size, average
            first = av * (n / z2 + 1)
            adj = np.sqrt(
                (-8 * first) ** 2
                - 64 * (1 / z2 + 1 / n) * av * (n * (av * (n / z2 + 2) - 1) + z2 * (av - 1))
            )
            lo, hi = ((first + s * adj / 8) / (1 / z2 + 1 / n) / n * multiplier for s in (-1, 1))
            lo, hi = np.maximum(lo, 0), np.minimum(hi, multiplier)
        elif statistic == "rate":
            tail = 1 - p  # expected counts at which P(X >= events) / P(X <= events) = tail
            lo = size * average / special.gammainccinv(size + 1, tail) * multiplier
            hi = size * average / special.gammaincinv(size, tail) * multiplier
        else:
            raise ValueError("statistic must be 'proportion' or 'rate'")
        out[f"lower_{tag}"], out[f"upper_{tag}"] = lo, hi
    return out
