"""The compressor registry: name -> class, and :func:`make_compressor`.

    make_compressor("topk")                                   # exact top-k
    make_compressor("randomk", scaled=True, seed=rank)        # unbiased random-k
    make_compressor("threshold", threshold=1e-3)
    make_compressor("sampled", sample_fraction=0.01, seed=rank)

Settings are the keyword arguments of each class; an unknown name or setting raises
ValueError listing the valid ones. Layer-wise selection wraps any of them:
``LayerwiseCompressor(make_compressor("topk"), layer_sizes(model.parameters()))``.
"""

from __future__ import annotations

from typing import Any

from sparsgd.compress.base import Compressor
from sparsgd.compress.checks import check_settings
from sparsgd.compress.dense import DenseCompressor
from sparsgd.compress.randomk import RandomKCompressor
from sparsgd.compress.sampled import SampledTopKCompressor
from sparsgd.compress.threshold import ThresholdCompressor
from sparsgd.compress.topk import TopKCompressor

__all__ = ["COMPRESSORS", "make_compressor"]

COMPRESSORS: dict[str, type] = {
    "dense": DenseCompressor,
    "topk": TopKCompressor,
    "randomk": RandomKCompressor,
    "threshold": ThresholdCompressor,
    "sampled": SampledTopKCompressor,
}


def make_compressor(name: str, **settings: Any) -> Compressor:
    """Build the compressor ``name`` with its settings (checked against its signature)."""
    if name not in COMPRESSORS:
        raise ValueError(f"unknown compressor {name!r}; valid names: {sorted(COMPRESSORS)}")
    cls = COMPRESSORS[name]
    return cls(**check_settings(cls, settings, f"compressor {name!r}"))
