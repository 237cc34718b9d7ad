"""Statistical disclosure control (SDC) of profile-cube nodes: the "safe" view.

Rules, as applied by ONS Secure Research Service output checking (SDC handbook: a minimum
cell count of 10) and by ACRO (AI-SDC/ACRO, ``safe_threshold = 10``,
``zeros_are_disclosive = True``):

1. **Primary suppression.** A count (``tests``, ``positive_tests``, ``people_tested``,
   ``people_positive``, survey counts) below the threshold is suppressed; so are zeros
   unless ``suppress_zeros=False``, and missing (NaN) counts, which cannot be checked.
2. **Masked derived values.** A rate, percentage, CI, DSR, significance label, SII/RII or
   survey prevalence whose numerator or denominator count is suppressed is suppressed too:
   rate x published population gives the count back (:data:`DERIVED_SOURCES`).
3. **Secondary suppression (the differencing argument).** Parts and their total are linked
   by one equation, total = sum of parts, so a margin holding exactly one suppressed cell
   gives it back by subtraction. Wherever a margin (the categories of a breakdown against
   the area's total, including ``unknown``; the LTLAs of a county, the LTLAs and the
   upper-tier units of a region or of England, the regions of England; the LSOAs of an LA)
   holds exactly one suppressed cell, counting the total, the smallest unsuppressed part is
   suppressed too (ties: the first), repeated until no margin changes. Every margin then has
   0 or >= 2 suppressed cells. This is a per-margin guarantee, not a full linear-programming
   audit. When no part is left to suppress (a margin of one part, e.g. a county with one
   listed LTLA): a total in the same node (county, region, England) is suppressed instead;
   a total in another node is already final, so a lone part of a margin whose total is
   published elsewhere is never chosen as a complement (it equals that total), and if such
   a part is suppressed anyway (only margins inconsistent with the node can say so) the
   node is refused with :class:`DisclosureError`. A margin whose total is suppressed counts
   it: one suppressed part plus a suppressed total is accepted.
4. **Optional rounding** to base 5 or 10 (half up) of every published count. Every published
   count is then ``rounded`` (marking only changed cells would reveal which were exact
   multiples). Totals are rounded independently, so parts may not sum to their total: this is
   flagged in :data:`ROUNDING_NOTE` and recorded in the output. Rates and percentages are
   recomputed from the rounded counts, so they cannot undo the rounding.

Suppressed numeric values become NaN and suppressed labels the empty string. Each measure
gets an int8 ``<measure>_status`` (:data:`STATUS_NAMES`). Measures without a rule are
suppressed whole (fail closed) and listed in the node attr ``disclosure_unverified``.
Everything is whole-array numpy: a node is read into memory first, so a lazily opened cube
and a loaded one give the same view.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import numpy as np
import xarray as xr

from lds_dask.cube import stats
from lds_dask.sdc.margins import (
    AREA_DIM,
    LSOA_DIM,
    STATUS_OK,
    STATUS_PRIMARY,
    STATUS_ROUNDED,
    STATUS_SECONDARY,
    STATUS_SUFFIX,
    DisclosureError,
    as_text,
    category_family,
    is_suppressed,
    margin_families,
    suppress_secondary,
)

STATUS_NAMES = ("ok", "suppressed_primary", "suppressed_secondary", "rounded")
DEFAULT_THRESHOLD = 10  # ONS SRS / ACRO minimum cell count
ROUNDING_BASES = (0, 5, 10)
COUNT_MEASURES = ("tests", "positive_tests", "people_tested", "people_positive")
SURVEY_COUNTS = ("survey_positive", "survey_responses")  # unweighted survey bases
PUBLIC_MEASURES = ("population",)  # ONS mid-year estimates, published already
CI_SUFFIXES = ("_lower", "_upper")
POSITIVITY, TESTING, CASES = (
    ("people_positive", "people_tested"),
    ("people_tested",),
    ("people_positive",),
)
DERIVED_SOURCES = {
    "positivity_pct": POSITIVITY,
    "test_positivity_pct": ("positive_tests", "tests"),
    "case_rate_per_100k": CASES,
    "testing_rate_per_100k": TESTING,
    "case_rate_dsr_per_100k": CASES,
    "sig_vs_england": POSITIVITY,
    "sig_vs_region": POSITIVITY,
    "positivity_sig_vs_england": POSITIVITY,
    "positivity_sig_vs_region": POSITIVITY,
    "survey_effective_n": ("survey_responses",),
    "survey_prevalence_pct": SURVEY_COUNTS,
    "positivity_to_prevalence_ratio": POSITIVITY + SURVEY_COUNTS,
    "sii_case_rate_per_100k": CASES,
    "rii_case_rate_per_100k": CASES,
    "sii_positivity_pct": POSITIVITY,
    "rii_positivity_pct": POSITIVITY,
}
# measure -> (numerator, denominator or None for population, multiplier): recomputed when rounding
RECOMPUTED = {
    "positivity_pct": ("people_positive", "people_tested", 100),
    "test_positivity_pct": ("positive_tests", "tests", 100),
    "case_rate_per_100k": ("people_positive", None, 100_000),
    "testing_rate_per_100k": ("people_tested", None, 100_000),
}
NON_CATEGORY_DIMS = (AREA_DIM, "week", LSOA_DIM, "period")
UNKNOWN_CATEGORIES = ("unknown", "UNKNOWN")
INEQUALITY_NODE, IMD_DECILE = "inequality", "imd_decile"
TEXT_KINDS = "OUSTa"  # numpy dtype kinds of label measures (T: StringDType)
ROUNDING_NOTE = (
    "Counts rounded independently to base {base} (half up); parts may not sum "
    "to their published total. Rates and percentages use the rounded counts."
)


@dataclasses.dataclass(frozen=True)
class DisclosureRules:
    """SDC rules of one job (the ``[disclosure]`` table of a job spec); recorded in outputs."""

    threshold: int = DEFAULT_THRESHOLD
    suppress_zeros: bool = True
    rounding: int = 0

    def __post_init__(self):
        if (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, int)
            or self.threshold < 1
        ):
            raise DisclosureError(f"threshold must be a positive integer, got {self.threshold!r}")
        if self.rounding not in ROUNDING_BASES:
            raise DisclosureError(
                f"rounding must be one of {ROUNDING_BASES}, got {self.rounding!r}"
            )

    @classmethod
    def from_config(cls, config: Mapping) -> DisclosureRules:
        """Rules from a job-config mapping; unknown keys are an error (extra="forbid")."""
        unknown = set(config) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise DisclosureError(f"unknown disclosure rule(s): {', '.join(sorted(unknown))}")
        return cls(**config)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def status_names(codes) -> np.ndarray:
    """Status codes -> their names (``ok``, ``suppressed_primary``, ...)."""
    return np.asarray(STATUS_NAMES, dtype=object)[np.asarray(codes, dtype=np.int64)]


def apply_disclosure_control(
    node: xr.Dataset,
    rules: DisclosureRules,
    margins: Mapping[str, xr.Dataset] | None = None,
    sources: xr.Dataset | None = None,
) -> xr.Dataset:
    """Return ``node`` with disclosive values suppressed (NaN) and ``<measure>_status`` codes.

    ``margins`` maps a category dim to the safe node holding the totals over it (``/total``
    for ``/sex``); without one the total is taken as published. ``sources`` holds
    ``<count>_status`` codes for derived measures whose counts live in another node (the
    ``/inequality`` SII/RII come from ``/imd_decile``).
    """
    node = node.compute()  # numpy from here on, whatever backs the input
    counts = [m for m in COUNT_MEASURES + SURVEY_COUNTS if m in node.data_vars]
    status = {m: _primary_status(node[m].values, rules) for m in counts}
    shared = margin_families(node)
    for m in counts:
        dims = node[m].dims
        cats = [d for d in dims if d not in NON_CATEGORY_DIMS]
        own = [category_family(node, d, margins or {}, m, dims) for d in cats]
        suppress_secondary(node, m, status[m], shared + own)
    new = {}
    for m in counts:
        new[m] = _published_counts(node[m].variable, status[m], rules)
        new[m + STATUS_SUFFIX] = xr.Variable(node[m].dims, status[m])
    unverified = _mask_derived(node, new, status, sources, rules)
    out = node.assign(new)
    out.attrs["disclosure_rules"] = rules.to_json()
    out.attrs["disclosure_unverified"] = json.dumps(unverified)
    if rules.rounding:
        out.attrs["rounding_note"] = ROUNDING_NOTE.format(base=rules.rounding)
    return out


def _primary_status(values: np.ndarray, rules: DisclosureRules) -> np.ndarray:
    """Small counts (and zeros, if disclosive) are suppressed; so is a count that cannot be
    checked (NaN: missing), which is unpublished anyway and so counts in every margin."""
    values = np.asarray(values, dtype=np.float64)
    small = (values < rules.threshold) & ((values != 0) | rules.suppress_zeros)
    return np.where(small | np.isnan(values), STATUS_PRIMARY, STATUS_OK).astype(np.int8)


def _published_counts(counts: xr.Variable, status: np.ndarray, rules) -> xr.Variable:
    """Counts with suppressed cells NaN and, if asked, the rest rounded (status updated)."""
    values = counts.values.astype(np.float64)
    hidden = is_suppressed(status)
    if rules.rounding:
        base = rules.rounding
        values = np.floor(values / base + 0.5) * base
        status[~hidden & ~np.isnan(values)] = STATUS_ROUNDED
    return counts.copy(data=np.where(hidden, np.nan, values))


def _mask_derived(node: xr.Dataset, new: dict, status: dict, sources, rules) -> list[str]:
    """Suppress derived measures from suppressed counts (into ``new``); returns the measures
    without a rule, which are suppressed whole."""
    unverified = []
    for m in [v for v in node.data_vars if _needs_rule(node, v, status)]:
        base = _base_measure(m)
        var = node[m].variable
        codes = _source_status(base, status, sources, var.dims)
        if codes is None:
            unverified.append(m)
            codes = np.full(var.shape, STATUS_PRIMARY, np.int8)
        elif rules.rounding and base in RECOMPUTED:
            var = _recomputed(node, new, m, base)
            codes = np.where(codes == STATUS_OK, STATUS_ROUNDED, codes).astype(np.int8)
        new[m] = _blank(var, is_suppressed(codes))
        new[m + STATUS_SUFFIX] = xr.Variable(var.dims, codes)
    return unverified


def _needs_rule(out: xr.Dataset, name: str, status: dict) -> bool:
    return (
        name not in status
        and not name.endswith(STATUS_SUFFIX)
        and name not in PUBLIC_MEASURES
        and out[name].ndim > 0
    )


def _base_measure(name: str) -> str:
    for suffix in CI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _source_status(base: str, status: dict, sources, dims) -> np.ndarray | None:
    """Combined code of a derived measure's source counts: primary beats secondary."""
    arrays = []
    for count in DERIVED_SOURCES.get(base, ()):
        if count in status:
            arrays.append(status[count])
        elif sources is not None and count + STATUS_SUFFIX in sources:
            arrays.append(sources[count + STATUS_SUFFIX].transpose(*dims).values)
    if not arrays:
        return None
    stack = np.stack(np.broadcast_arrays(*arrays))
    primary, secondary = (stack == STATUS_PRIMARY).any(0), (stack == STATUS_SECONDARY).any(0)
    return np.select([primary, secondary], [STATUS_PRIMARY, STATUS_SECONDARY], STATUS_OK).astype(
        np.int8
    )


def _recomputed(node: xr.Dataset, new: dict, name: str, base: str) -> xr.Variable:
    """A rate/percentage (or CI limit) recomputed from the already rounded counts."""
    num, den, multiplier = RECOMPUTED[base]
    x = new[num].values
    n = new[den].values if den else node["population"].values
    if den:
        point, lower, upper = stats.proportion_ci(x, n, multiplier)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            point = x / n * multiplier
        lower, upper = stats.rate_ci(x, n, multiplier)
    pick = {base: point, base + "_lower": lower, base + "_upper": upper}[name]
    return node[name].variable.copy(data=np.asarray(pick, dtype=np.float64))


def _blank(da: xr.Variable, hidden: np.ndarray) -> xr.Variable:
    if da.dtype.kind in TEXT_KINDS:
        return da.copy(data=np.where(hidden, "", da.values.astype(object)).astype(da.dtype))
    return da.copy(data=np.where(hidden, np.nan, da.values.astype(np.float64)))


def source_status_over(node: xr.Dataset, dim: str) -> xr.Dataset:
    """``<count>_status`` of a safe node combined over ``dim`` (``unknown`` excluded).

    Used for values computed across a breakdown (SII/RII across IMD deciles): any
    suppressed input cell suppresses the output.
    """
    keep = ~np.isin(as_text(node[dim].values), UNKNOWN_CATEGORIES)
    out = xr.Dataset()
    for name in [v for v in node.data_vars if v.endswith(STATUS_SUFFIX)]:
        codes = node[name].isel({dim: keep})
        primary = (codes == STATUS_PRIMARY).any(dim)
        secondary = (codes == STATUS_SECONDARY).any(dim)
        out[name] = xr.where(
            primary, STATUS_PRIMARY, xr.where(secondary, STATUS_SECONDARY, STATUS_OK)
        ).astype(np.int8)
    return out


def safe_view(tree: xr.DataTree, rules: DisclosureRules) -> xr.DataTree:
    """The disclosure-controlled view of a whole cube: every node through
    :func:`apply_disclosure_control`, totals before the breakdowns that sum to them.

    The cube is read into numpy once first (a cube is small; a lazily opened one would
    otherwise be read node by node), so a lazy and a loaded cube give the same view."""
    tree = tree.compute()
    safe: dict[str, xr.Dataset] = {}
    by_dims: dict[frozenset, xr.Dataset] = {}
    for n in sorted((n for n in tree.subtree if n.path != "/"), key=_processing_order):
        ds = n.to_dataset(inherit=True)
        sources = None
        deciles = n.parent.path.rstrip("/") + "/" + IMD_DECILE if n.parent else ""
        if n.name == INEQUALITY_NODE and deciles in safe:
            sources = source_status_over(safe[deciles], IMD_DECILE)
        dims = frozenset(ds.dims)
        margins = {
            d: by_dims[dims - {d}]
            for d in ds.dims
            if d not in NON_CATEGORY_DIMS and dims - {d} in by_dims
        }
        safe[n.path] = apply_disclosure_control(ds, rules, margins, sources)
        if n.name != INEQUALITY_NODE:
            by_dims.setdefault(dims, safe[n.path])
    root = tree.to_dataset(inherit=False).copy()
    root.attrs["disclosure_rules"] = rules.to_json()
    own = {p: tree[p].to_dataset(inherit=False) for p in safe}
    return xr.DataTree.from_dict(
        {"/": root, **{p: _drop_inherited(v, own[p]) for p, v in safe.items()}}
    )


def _processing_order(node: xr.DataTree) -> tuple:
    """Totals before the breakdowns summing to them; /inequality after /imd_decile."""
    return (node.name == INEQUALITY_NODE, len(node.dims), node.path)


def _drop_inherited(safe: xr.Dataset, own: xr.Dataset) -> xr.Dataset:
    """Drop coordinates a node inherits from its parent, so the tree rebuilds cleanly."""
    return safe.drop_vars([c for c in safe.coords if c not in own.coords and c not in safe.dims])
