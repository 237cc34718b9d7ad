"""Planted parameters of the synthetic generator: the truth a pipeline must recover.

Every number a test checks lives here, in frozen dataclasses, and is written verbatim to
``truth/params.json``. Effects are odds ratios on latent prevalence (``*_or``) or
multiplicative ratios on weekly testing uptake (``*_uptake``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

from lds_dask.contract.bands import LDS_BANDS

AGE_OR = dict(zip(LDS_BANDS, (0.4, 0.9, 1.6, 1.3, 1.2, 1.1, 0.9, 0.6, 0.7, 1.0), strict=True))
AGE_UPTAKE = dict(zip(LDS_BANDS, (0.5, 0.9, 1.1, 1.3, 1.3, 1.1, 0.9, 0.7, 0.9, 1.5), strict=True))
LFD_AGE_UPTAKE = dict(
    zip(LDS_BANDS, (0.1, 2.0, 1.6, 1.2, 1.2, 1.0, 0.8, 0.4, 0.2, 0.1), strict=True)
)
SURVEY_RESPONSE = dict(
    zip(LDS_BANDS, (0.0, 0.8, 0.5, 0.6, 0.8, 0.9, 1.0, 1.0, 0.9, 0.7), strict=True)
)
ETHNICITY_OR = {
    "ASIAN": 1.6,
    "BLACK": 1.3,
    "MIXED": 1.2,
    "WHITE": 1.0,
    "OTHER": 1.3,
    "UNKNOWN": 1.0,
}
SEX_UPTAKE = {"F": 1.15, "M": 1.0}
REGION_SHIFT_WEEKS = {  # regional timing of the epidemic relative to England (weeks)
    "E12000001": -1.5,
    "E12000002": -2.0,
    "E12000003": -1.0,
    "E12000004": 0.0,
    "E12000005": 0.0,
    "E12000006": 1.0,
    "E12000007": 0.5,
    "E12000008": 1.5,
    "E12000009": 2.0,
}


@dataclass(frozen=True)
class ModelParams:
    """The generative model: latent prevalence, test seeking, LFD, survey, data quirks."""

    imd_log_odds_per_decile: float = -0.08  # per step from decile 1 (most deprived) to 10
    age_or: dict = field(default_factory=lambda: dict(AGE_OR))
    ethnicity_or: dict = field(default_factory=lambda: dict(ETHNICITY_OR))
    la_multiplier_sd: float = 0.3  # sd of the per-LA log prevalence multiplier
    region_shift_weeks: dict = field(default_factory=lambda: dict(REGION_SHIFT_WEEKS))
    symptomatic_test_factor: float = 10.0  # the infected test this many times as often
    age_uptake: dict = field(default_factory=lambda: dict(AGE_UPTAKE))
    sex_uptake: dict = field(default_factory=lambda: dict(SEX_UPTAKE))
    imd_uptake_decile1: float = 0.8  # uptake ratio of decile 1 vs decile 10 (linear between)
    repeat_share: float = 0.2  # share of PCR person-weeks by people seen in earlier weeks
    extra_pcr_prob: float = 0.05  # a person-week with a second PCR test
    void_prob: float = 0.006  # a person-week with an extra VOID test
    cross_la_share: float = 0.01  # person-weeks with a later test in another LA of the region
    pillar1_share: float = 0.08
    pillar1_share_85plus: float = 0.5
    lsoa_unknown_share: float = 0.005
    age_unknown_share: float = 0.001
    sex_unknown_share: float = 0.002
    symptomatic_if_infected: float = 0.7
    symptomatic_if_not: float = 0.3
    symptom_unasked_share: float = 0.1
    lfd_start: dt.date = dt.date(2021, 1, 1)
    lfd_people_ratio_start: float = 0.5  # LFD person-weeks per PCR person-week at lfd_start
    lfd_people_ratio_full: float = 1.0  # ... from lfd_full onwards (linear ramp between)
    lfd_full: dt.date = dt.date(2021, 3, 8)
    lfd_second_test_prob: float = 0.4  # twice-weekly testers
    lfd_sensitivity: float = 0.6
    lfd_false_positive_rate: float = 0.0003
    lfd_overlap_share: float = 0.15  # LFD person-weeks by a person also PCR-tested that week
    lfd_repeat_share: float = 0.5
    lfd_age_uptake: dict = field(default_factory=lambda: dict(LFD_AGE_UPTAKE))
    survey_per_week: int = 60_000  # swabs per week at scale 1.0
    survey_min_age: int = 2
    survey_response: dict = field(default_factory=lambda: dict(SURVEY_RESPONSE))
    survey_repeat_share: float = 0.5

    def to_dict(self) -> dict:
        return {
            k: (v.isoformat() if isinstance(v, dt.date) else v)
            for k, v in dataclasses.asdict(self).items()
        }


@dataclass(frozen=True)
class ChunkingParams:
    """How the work is cut into Dask tasks (LA bundle x week range); depends on scale only."""

    records_per_chunk: int = 1_500_000
    weeks_per_range: int = 13
    min_bundles: int = 2
    records_per_person_week: float = 1.55  # for sizing only (PCR + extras + LFD)
