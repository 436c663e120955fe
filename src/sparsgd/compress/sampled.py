"""The ``sampled`` compressor: approximate top-k from a sampled threshold (DGC's trick).

Deep Gradient Compression (Lin et al., ICLR 2018) estimates the top-k threshold from a small
random sample instead of sorting all of x:

    S    = |x_J|, J ~ n_s uniform draws            # (1) n_s = max(MIN_SAMPLE, fraction d)
    k_s  = ceil(k n_s / d)                         #     the sample's share of the top k
    t    = k_s-th largest of S                     # (2) estimate of the k-th largest |x|
    C    = { i : |x_i| >= t }                      # (3) one chunked pass
    if |C| > tolerance k:  keep the exact top-k of C          # (4) too many: trim to k
    elif |C| < k / tolerance and tries left: k_s <- 2 k_s, go to (2)   # too few: lower t
    else: keep C

It is approximate: the achieved density is reported (``msg.density``, ``last_density``) and
lies in [density / tolerance, tolerance * density] unless the adaptation runs out of tries.
Kept indices are ascending; entries tied with the threshold are all kept or all dropped.
The sample comes from this compressor's generator (seeded by ``seed``; state saved/loaded).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from sparsgd.compress.candidates import candidates_at_least, select_exact
from sparsgd.compress.checks import check_flat, check_seed, check_state_keys, k_from_density
from sparsgd.compress.message import SparseMessage, check_value_dtype, gather_message
from sparsgd.compress.scratch import Scratch

__all__ = ["MIN_SAMPLE", "SampledTopKCompressor"]

MIN_SAMPLE = 1024  # draws at least; a 1 % sample of a small layer says little


class SampledTopKCompressor:
    """DGC-style sampled top-k with adaptation; see the module docstring."""

    name = "sampled"

    def __init__(
        self,
        sample_fraction: float = 0.01,
        tolerance: float = 1.3,
        max_adapt: int = 4,
        seed: int = 0,
        value_dtype: torch.dtype = torch.float32,
    ) -> None:
        if not (isinstance(sample_fraction, (int, float)) and 0 < sample_fraction <= 1):
            raise ValueError(f"sample_fraction must be in (0, 1]; got {sample_fraction!r}")
        if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance)) or tolerance < 1:
            raise ValueError(f"tolerance must be a finite number >= 1; got {tolerance!r}")
        if isinstance(max_adapt, bool) or not isinstance(max_adapt, int) or max_adapt < 0:
            raise ValueError(f"max_adapt must be a non-negative integer; got {max_adapt!r}")
        self.sample_fraction = float(sample_fraction)
        self.tolerance = float(tolerance)
        self.max_adapt = max_adapt
        self.seed = check_seed(seed)
        self.value_dtype = check_value_dtype(value_dtype)
        self.generator = torch.Generator().manual_seed(seed)
        self._scratch = Scratch()  # work buffers of the candidate pass, reused across calls
        self.last_density: float | None = None  # statistic: achieved density of the last call

    def compress(self, x: Tensor, density: float) -> SparseMessage:
        check_flat(x)
        d = x.numel()
        k = k_from_density(density, d)
        msg = gather_message(x, self._select(x, k), self.value_dtype)
        self.last_density = msg.density
        return msg

    def _select(self, x: Tensor, k: int) -> Tensor:
        """Indices (int64 ascending) kept for ``k`` requested entries."""
        d = x.numel()
        n_s = min(d, max(MIN_SAMPLE, math.ceil(self.sample_fraction * d)))
        draws = torch.randint(d, (n_s,), generator=self.generator).to(x.device)
        sample = x[draws].abs()  # (1) (n_s,)
        k_s = min(n_s, math.ceil(k * n_s / d))
        for _ in range(self.max_adapt + 1):
            t = torch.kthvalue(sample, n_s - k_s + 1).values  # (2) k_s-th largest
            indices, magnitudes = candidates_at_least(x, t, self._scratch)  # (3)
            n = indices.numel()
            if n > self.tolerance * k:
                return select_exact(indices, magnitudes, k)  # (4) trim to exactly k
            if n * self.tolerance >= k or k_s == n_s:
                break
            k_s = min(n_s, 2 * k_s)  # too few: lower the threshold
        return indices

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_keys(state, {"generator"}, f"compressor {self.name!r}")
        self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return (
            f"SampledTopKCompressor(sample_fraction={self.sample_fraction}, "
            f"tolerance={self.tolerance}, max_adapt={self.max_adapt}, seed={self.seed}, "
            f"value_dtype={self.value_dtype})"
        )
