"""The ``dense`` compressor: ``C(x) = x``, so every code path also runs uncompressed.

    indices = 0, 1, ..., d - 1
    values  = x                       # cast to value_dtype

The message costs ``d * (4 + 4)`` bytes (indices included), twice a dense float32 tensor; a
collective that wants the plain dense allreduce uses ``comm``'s ``dense`` path instead. The
``density`` argument is checked but has no effect: the achieved density is always 1.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sparsgd.compress.checks import check_density, check_finite, check_flat, check_state_keys
from sparsgd.compress.message import SparseMessage, check_value_dtype, gather_message

__all__ = ["DenseCompressor"]


class DenseCompressor:
    """Sends every entry; stateless."""

    name = "dense"

    def __init__(self, value_dtype: torch.dtype = torch.float32) -> None:
        self.value_dtype = check_value_dtype(value_dtype)

    def compress(self, x: Tensor, density: float) -> SparseMessage:
        check_flat(x)
        check_density(density)
        check_finite(x, "x")
        indices = torch.arange(x.numel(), device=x.device)
        return gather_message(x, indices, self.value_dtype)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_keys(state, set(), f"compressor {self.name!r}")

    def __repr__(self) -> str:
        return f"DenseCompressor(value_dtype={self.value_dtype})"
