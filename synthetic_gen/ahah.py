"""Synthetic AHAH v3 (Access to Healthy Assets and Hazards) per LSOA11, correlated with IMD.

The real CDRC file cannot ship, so this writes its layout (columns from
``schemas/ahah.yaml``) with values drawn around the LSOA's IMD rank, and flags the file as
synthetic in its parquet key-value metadata. Higher score and rank = less healthy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from lds_dask.contract import refdata
from lds_dask.contract.schemas import load_schema
from synthetic_gen.ids import rng_for

IMD_CORRELATION = 0.5  # weight of the (standardised) deprivation signal in each domain
DOMAINS = {  # domain -> indicators (median minutes or concentration)
    "ah3h": {"ah3gp": 6.0, "ah3dent": 6.5, "ah3phar": 5.0, "ah3hosp": 14.0, "ah3leis": 9.0},
    "ah3g": {"ah3blue": 12.0},
    "ah3e": {"ah3no2": 18.0, "ah3so2": 2.5, "ah3pm10": 14.0},
    "ah3r": {"ah3ffood": 5.0, "ah3gamb": 7.0, "ah3pubs": 4.5, "ah3tob": 6.0},
}


def synthesise_ahah(seed: int) -> pl.DataFrame:
    """One row per LSOA11 in the AHAH v3 layout; deprivation raises the hazard domains."""
    rng = rng_for(seed, "ahah")
    lsoas = refdata.lsoas().sort("lsoa11_code")
    n = lsoas.height
    dep = 1 - (lsoas["imd_rank"].to_numpy() - 0.5) / n  # 1 = most deprived
    z = (dep - dep.mean()) / dep.std()
    cols: dict = {"lsoa11": lsoas["lsoa11_code"]}
    domains = {}
    for domain, indicators in DOMAINS.items():
        signal = IMD_CORRELATION * z + np.sqrt(1 - IMD_CORRELATION**2) * rng.normal(size=n)
        domains[domain] = signal
        for name, median in indicators.items():
            # hazards (air, retail) rise with deprivation; access minutes fall slightly
            sign = 1.0 if domain in ("ah3e", "ah3r") else -0.3
            cols[name] = median * np.exp(0.4 * sign * signal + 0.2 * rng.normal(size=n))
    cols["ah3gpas"] = np.clip(0.3 - 0.08 * domains["ah3g"] + 0.05 * rng.normal(size=n), 0, 1)
    for domain, signal in domains.items():
        cols[domain] = 50 + 10 * signal
    score = np.mean([cols[d] for d in DOMAINS], axis=0)
    cols["ah3ahah"] = score
    cols["ah3ahah_rn"] = np.argsort(np.argsort(score, kind="stable"), kind="stable") + 1
    schema = load_schema("ahah")
    return pl.DataFrame(cols).select(schema.columns).cast(schema.polars_schema())


def write_ahah(path: Path, seed: int) -> Path:
    """Write the synthetic AHAH parquet with ``{"synthetic": "true", ...}`` metadata."""
    table = synthesise_ahah(seed).to_arrow().cast(load_schema("ahah").arrow_schema())
    meta = dict(table.schema.metadata or {})
    meta.update(
        {
            b"synthetic": b"true",
            b"generator": b"synthetic_gen",
            b"seed": str(seed).encode(),
            b"layout": b"CDRC AHAH v3",
            b"note": b"Synthetic values correlated with IMD 2019; not real AHAH data.",
        }
    )
    pq.write_table(table.replace_schema_metadata(meta), path, compression="zstd")
    return path


def read_metadata(path: Path) -> dict[str, str]:
    """The parquet key-value metadata of an AHAH file, decoded."""
    raw = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items()}
