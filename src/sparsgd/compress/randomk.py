"""The ``randomk`` compressor: k coordinates drawn uniformly without replacement.

    J    ~ uniform k-subset of {0, ..., d-1}      # (1) from this compressor's generator
    C(x) = s * x_J,  s = d / k if scaled else 1  # (2)

Scaled, it is unbiased: each i is kept with probability k/d, so E[C(x)_i] = (d/k)(k/d) x_i = x_i.
Unscaled, E||x - C(x)||^2 = (1 - k/d) ||x||^2 (the contraction of docs/algorithms.md section 1).

Drawing J: for k <= d/4, draw indices with replacement and keep the first k distinct ones in
draw order (each new distinct index is uniform over those not yet drawn, i.e. sampling without
replacement; about 1.15 k draws, O(k log k)); above that a permutation of d is cheaper.
The generator is seeded from ``seed`` (derive it per rank) and its state is saved and loaded,
so a restored compressor makes the same next selection.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sparsgd.compress.checks import (
    check_finite,
    check_flat,
    check_seed,
    check_state_keys,
    k_from_density,
)
from sparsgd.compress.message import SparseMessage, check_value_dtype, gather_message

__all__ = ["RandomKCompressor", "sample_without_replacement"]

PERMUTATION_ABOVE = 0.25  # k / d above which randperm beats repeated draws


def sample_without_replacement(d: int, k: int, generator: torch.Generator) -> Tensor:
    """A uniform random k-subset of ``range(d)`` as ``(k,)`` int64 ascending. (1)"""
    if k > PERMUTATION_ABOVE * d:
        return torch.sort(torch.randperm(d, generator=generator)[:k]).values
    draws = torch.empty(0, dtype=torch.int64)
    distinct = draws
    while distinct.numel() < k:
        more = k - distinct.numel() + k // 8 + 16  # a few extra for the repeats
        draws = torch.cat([draws, torch.randint(d, (more,), generator=generator)])
        distinct, inverse = torch.unique(draws, sorted=True, return_inverse=True)
    position = torch.arange(draws.numel())
    first = torch.full((distinct.numel(),), draws.numel(), dtype=torch.int64)
    first.scatter_reduce_(0, inverse, position, reduce="amin")  # first draw of each value
    chosen = distinct[torch.argsort(first)[:k]]  # the first k distinct values drawn
    return torch.sort(chosen).values


class RandomKCompressor:
    """Uniform random-k; ``scaled=True`` multiplies the values by d/k (unbiased)."""

    name = "randomk"

    def __init__(
        self, scaled: bool = False, seed: int = 0, value_dtype: torch.dtype = torch.float32
    ) -> None:
        if not isinstance(scaled, bool):
            raise TypeError(f"scaled must be True or False; got {scaled!r}")
        self.scaled = scaled
        self.seed = check_seed(seed)
        self.value_dtype = check_value_dtype(value_dtype)
        self.generator = torch.Generator().manual_seed(seed)

    def compress(self, x: Tensor, density: float) -> SparseMessage:
        check_flat(x)
        d = x.numel()
        k = k_from_density(density, d)
        check_finite(x, "x")  # the unsent entries stay in a residual: refuse NaN/Inf here
        indices = sample_without_replacement(d, k, self.generator).to(x.device)  # (1)
        scale = d / k if self.scaled else 1.0
        return gather_message(x, indices, self.value_dtype, scale)  # (2)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_keys(state, {"generator"}, f"compressor {self.name!r}")
        self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return (
            f"RandomKCompressor(scaled={self.scaled}, seed={self.seed}, "
            f"value_dtype={self.value_dtype})"
        )
