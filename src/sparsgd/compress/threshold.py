"""The ``threshold`` compressor: keep every entry with ``|x_i| >= h`` for a fixed ``h``.

    C(x)_i = x_i  if |x_i| >= h  else 0          # (1) one chunked pass over x

The density is not controlled: the ``density`` argument is checked but ignored, and the
achieved density ``nnz / d`` is reported by the message (``msg.density``) and kept in
``last_density``. A message may be empty (nothing reaches h). ``|x_i|`` is compared with h
in the dtype of x.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from sparsgd.compress.candidates import candidates_at_least
from sparsgd.compress.checks import check_density, check_flat, check_state_keys
from sparsgd.compress.message import SparseMessage, check_value_dtype, gather_message
from sparsgd.compress.scratch import Scratch

__all__ = ["ThresholdCompressor"]


class ThresholdCompressor:
    """Fixed magnitude threshold ``h > 0``; stateless apart from the statistic."""

    name = "threshold"

    def __init__(self, threshold: float, value_dtype: torch.dtype = torch.float32) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(f"threshold must be a positive number; got {threshold!r}")
        if not math.isfinite(threshold) or threshold <= 0:
            raise ValueError(f"threshold must be finite and > 0; got {threshold}")
        self.threshold = float(threshold)
        self.value_dtype = check_value_dtype(value_dtype)
        self._scratch = Scratch()  # work buffers of the candidate pass, reused across calls
        self.last_density: float | None = None  # statistic: achieved density of the last call

    def compress(self, x: Tensor, density: float) -> SparseMessage:
        check_flat(x)
        check_density(density)
        indices, _ = candidates_at_least(x, self.threshold, self._scratch)  # (1)
        msg = gather_message(x, indices, self.value_dtype)
        self.last_density = msg.density
        return msg

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_keys(state, set(), f"compressor {self.name!r}")

    def __repr__(self) -> str:
        return f"ThresholdCompressor(threshold={self.threshold}, value_dtype={self.value_dtype})"
