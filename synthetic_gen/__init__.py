"""Synthetic national NHS Test and Trace extracts with a planted, recoverable truth.

``generate(out, scale=0.01, seed=42, ...)`` writes ``test_records/``,
``survey_responses/``, ``ahah.parquet``, ``truth/`` and ``manifest.json``. See
synthetic_gen/README.md for the model and the truth files.
"""

from synthetic_gen.generate import FORMATS, GenerateOptions, generate
from synthetic_gen.params import ChunkingParams, ModelParams

__all__ = ["generate", "GenerateOptions", "ModelParams", "ChunkingParams", "FORMATS"]
