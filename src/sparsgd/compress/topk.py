"""Exact top-k by a sampled threshold, and the ``topk`` compressor built on it.

``torch.topk`` on CPU costs about 20 passes over x at d = 1e7, k = 1e4. The same exact answer
(the index set of :func:`~sparsgd.compress.topk_reference.topk_reference`: the k largest
``|x_i|``, ties broken by the lower index) needs about one:

    S   = |x[o::s]|                     # (1) strided sample, n_s entries, deterministic
    h   = k n_s / d                     #     expected sample entries among the top k:
                                        #     64, more for large k (sample_hits)
    r   = ceil(h + 4 sqrt(h) + 4)       #     rank with a 4-sigma margin above h
    t   = r-th largest of S             # (2) threshold a little below the k-th largest |x|
    C   = { i : |x_i| >= t }            # (3) about one pass; |C| is about (r / h) k: 1.6 k
                                        #     at h = 64, 1.3 k at h = 330
    if |C| >= k: return exact_topk(C)   # (4) select among candidates, ties to lower index
    else: retry with rank 4r, 16r, then the whole of x   # the sample misjudged: stay exact

The result is exact whatever the sample says; the sample only decides the speed. Every entry
with ``|x_i| >= t`` is a candidate, so if ``|C| >= k`` the k-th largest of ``|x|`` is in C
and so is every entry tied with it: the top-k of C is the top-k of x.

Where the install compiled :mod:`sparsgd.compress.kernels` (CPU, contiguous float32/64), (1)
to (4) run in one compiled call at every size (:func:`kernel_plan` gives it the sample and
ranks above; k above FAST_MAX_DENSITY d goes straight to the whole of x), and the ``topk``
compressor has the same call write the message (int32 indices, the values) too. Everything
below is the path without it, which gives the same indices.

Below FAST_MIN_NUMEL entries the fixed cost of a few dozen small operations dominates, and a
plain exact selection of the k-th and (k+1)-th largest magnitudes v_k, v_{k+1} is cheaper:

    v_{k+1}, top k  = partition(|x|, d - k - 1)     # (5) CPU: numpy's introselect, one copy
                    = torch.topk(|x|, k + 1)        #     other devices
    v_k             = min(top k)
    if v_k > v_{k+1}: return { i : |x_i| >= v_k }   # (6) exactly k entries, no tie at the border
    else: the exact path over all of x              #     a tie at the border: apply the rule

With no tie at the border every tie rule picks the same set. On CPU (5) costs about 40 % of
``torch.topk`` at d = 3e4 and wins up to about 2^18 entries, where the fast path takes over.

Step (3) is :func:`~sparsgd.compress.candidates.candidates_at_least` (numpy's nonzero on
CPU). Work buffers come from a :class:`~sparsgd.compress.scratch.Scratch` the caller may keep
(the ``topk`` compressor keeps one), so repeated calls allocate nothing of x's size; the small
paths keep their ``|x|``, its partitioned copy and the positions there too.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sparsgd.compress import kernels
from sparsgd.compress.candidates import candidates_at_least, numpy_ok, select_exact
from sparsgd.compress.checks import (
    check_finite,
    check_flat,
    check_k,
    check_state_keys,
    k_from_density,
)
from sparsgd.compress.message import (
    INT32_LIMIT,
    SparseMessage,
    check_value_dtype,
    gather_message,
)
from sparsgd.compress.scratch import Scratch

__all__ = [
    "FAST_MIN_NUMEL",
    "SAMPLE_HITS",
    "TopKCompressor",
    "kernel_plan",
    "sample_positions",
    "topk_indices",
]

FAST_MIN_NUMEL = 1 << 18  # below this a plain exact selection is as fast (measured on CPU)
FAST_MAX_DENSITY = 1 / 16  # above this most of x would be candidates anyway
SAMPLE_HITS = 64  # expected sample entries among the top k: the estimate's precision, at least
MAX_SAMPLE_HITS = 1024  # and at most (sample_hits)
MAX_SAMPLE_FRACTION = 1 / 8  # never sample more than this share of x
PLANS_KEPT = 64  # (d, density) -> (k, sampling plan) pairs a topk compressor remembers
RANK_LADDER = (1, 4, 16)  # margins tried, times r, before the exact path over all of x


def topk_indices(x: Tensor, k: int, scratch: Scratch | None = None) -> Tensor:
    """``(k,)`` int64 ascending indices of the k largest ``|x_i|``, ties to the lower index.

    ``x``: finite (d,) floating tensor (float16/32/64); NaN or Inf raises NonFiniteError.
    ``scratch``: work buffers to reuse across calls (a fresh one when None).
    Same index set as :func:`~sparsgd.compress.topk_reference.topk_reference`.
    """
    check_flat(x)
    d = x.numel()
    check_k(k, d)
    scratch = scratch if scratch is not None else Scratch()
    if kernels.usable(x):  # (1)-(4) in one compiled call
        chosen = kernels.topk(x, k, kernel_plan(d, k), scratch)
        if chosen is None:
            check_finite(x, "x")  # raises
        return chosen
    if d < FAST_MIN_NUMEL:
        small = _exact_partition if numpy_ok(x) else _exact_small
        return small(x, k, scratch)
    if k > FAST_MAX_DENSITY * d:
        return _exact_over_all(x, k, scratch)
    sample = x[sample_positions(d, k)].abs()  # (1) (n_s,)
    n_s = sample.numel()
    for rank in _ranks(k, d, n_s):
        t = float(torch.topk(sample, rank, sorted=False).values.min())  # (2) rank-th largest
        indices, magnitudes = candidates_at_least(x, t, scratch)  # (3)
        if indices.numel() >= k:
            return select_exact(indices, magnitudes, k)  # (4)
    return _exact_over_all(x, k, scratch)


def _ranks(k: int, d: int, n_s: int) -> list[int]:
    """Sample ranks r, 4r, 16r (distinct, at most n_s): ever lower thresholds."""
    hits = k * n_s / d
    r = math.ceil(hits + 4 * math.sqrt(hits) + 4)
    return sorted({min(n_s, r * m) for m in RANK_LADDER})


def kernel_plan(d: int, k: int) -> tuple[int, int, tuple[int, int, int]]:
    """``(start, stride, ranks)`` for :func:`sparsgd.compress.kernels.topk`: the sample of
    (1) and the three ranks of the ladder, or stride 0 (no sample: the exact path over all
    of x) when k is above FAST_MAX_DENSITY d. The compiled loop samples at any d: its fixed
    cost is a few microseconds, so unlike the torch path it needs no small-x branch. Cached
    (a training run asks for the same few (d, k) every step), keyed by the tuning constants
    too."""
    return _plan(d, k, FAST_MAX_DENSITY, SAMPLE_HITS, MAX_SAMPLE_FRACTION)


@functools.lru_cache(maxsize=256)
def _plan(
    d: int, k: int, max_density: float, hits: int, fraction: float
) -> tuple[int, int, tuple[int, int, int]]:
    if k > max_density * d:
        return 0, 0, (0, 0, 0)
    sample = sample_positions(d, k)
    n_s = len(range(sample.start, d, sample.step))
    ranks = _ranks(k, d, n_s)
    padded = (*ranks, *[ranks[-1]] * (3 - len(ranks)))  # the loop skips a repeated rank
    return sample.start, sample.step, (padded[0], padded[1], padded[2])


def sample_hits(d: int, k: int) -> int:
    """h of (1): SAMPLE_HITS, more when k is large. The sample costs about h d / k strided
    reads, and the margin about 4 k / sqrt(h) extra candidates, each written, copied and
    partitioned; at about equal cost per entry the sum is least at h = (2 k^2 / d)^(2/3):
    below SAMPLE_HITS at density 1e-3 up to d = 3e7, about 160 at 1e7 / 1e-2 and 330 at
    3e7 / 1e-2 (where SAMPLE_HITS gave 1.3 times the candidates). At most MAX_SAMPLE_HITS."""
    return min(MAX_SAMPLE_HITS, max(SAMPLE_HITS, math.ceil((2 * k * k / d) ** (2 / 3))))


def sample_positions(d: int, k: int) -> slice:
    """The strided sample ``o::s`` read by the fast path: about h d / k entries (h of
    :func:`sample_hits`), at most MAX_SAMPLE_FRACTION d."""
    hits = sample_hits(d, k)
    n_target = max(1, min(math.ceil(hits * d / k), int(MAX_SAMPLE_FRACTION * d)))
    stride = max(1, d // n_target)
    return slice(stride // 2, None, stride)


def _exact_partition(x: Tensor, k: int, scratch: Scratch) -> Tensor:
    """Small x on CPU (float16/32/64), steps (5) and (6) of the module docstring: numpy's
    introselect on a copy of ``|x|``, then one compare returns the k entries in index order.
    NaN and Inf sort into the top k, so reading its max notices them; a tie at the border
    (v_k == v_{k+1}) goes to the exact path over all of x."""
    d = x.numel()
    if k == d:
        check_finite(x, "x")
        return torch.arange(d)
    a = x.detach().numpy()
    mags = np.abs(a, out=scratch.take_array("magnitudes", d, a.dtype))  # (d,)
    work = scratch.take_array("partition", d, a.dtype)  # (d,) reordered by the partition
    np.copyto(work, mags)
    work.partition(d - k - 1)  # (5) work[d-k-1] = v_{k+1}; the k entries after it are >= it
    top = work[d - k :]  # (k,) the k largest magnitudes; NaN and Inf sort in here
    if not math.isfinite(float(top.max())):
        check_finite(x, "x")  # raises
    kth, next_ = top.min(), work[d - k - 1]  # v_k, v_{k+1}
    if not kth > next_:
        return _exact_over_all(x, k, scratch)
    chosen = np.flatnonzero(np.greater_equal(mags, kth))  # (6) exactly k, ascending
    return torch.from_numpy(chosen.astype(np.int64, copy=False))


def _exact_small(x: Tensor, k: int, scratch: Scratch) -> Tensor:
    """Small x off CPU (or in a dtype numpy lacks), steps (5) and (6) by ``torch.topk`` of
    k + 1 entries: if v_k > v_{k+1} its top k is the answer, sorted by index; else the exact
    path decides. Four operations, so the per-call overhead stays near torch.topk's own."""
    d = x.numel()
    if k == d:
        check_finite(x, "x")
        return torch.arange(d, device=x.device)
    magnitudes = torch.abs(x.detach(), out=scratch.take("magnitudes", d, x.dtype, x.device))
    values, positions = torch.topk(magnitudes, k + 1, sorted=True)  # descending, NaN first
    largest, kth, next_ = values[[0, k - 1, k]].tolist()  # one read back, not three
    if not math.isfinite(largest):
        check_finite(x, "x")  # raises
    if kth > next_:
        return torch.sort(positions[:k]).values
    return _exact_over_all(x, k, scratch)


def _exact_over_all(x: Tensor, k: int, scratch: Scratch) -> Tensor:
    """Exact path over every entry: one quickselect plus the tie rule, buffers from scratch."""
    check_finite(x, "x")
    d = x.numel()
    positions = scratch.take("positions", d, torch.int64, x.device)
    torch.arange(d, out=positions)
    magnitudes = torch.abs(x.detach(), out=scratch.take("magnitudes", d, x.dtype, x.device))
    return select_exact(positions, magnitudes, k)


class TopKCompressor:
    """``C(x)``: keep the k = max(1, floor(density d)) largest ``|x_i|``, exactly.

    Stateless apart from reused work buffers; ``value_dtype`` (float32 or float16) is the
    dtype of the values sent.
    """

    name = "topk"

    def __init__(self, value_dtype: torch.dtype = torch.float32) -> None:
        self.value_dtype = check_value_dtype(value_dtype)
        self._scratch = Scratch()  # work buffers of topk_indices, reused across calls
        # (d, rho) -> (k, sampling plan, address of the compiled call's work buffer or 0)
        self._plans: dict[tuple[int, float], tuple[int, Any, int]] = {}
        self._work = torch.empty(0)  # (largest d,) float32: |x| or the sample of that call

    def compress(self, x: Tensor, density: float) -> SparseMessage:
        if type(x) is not Tensor or x.dim() != 1:  # check_flat's two cheap tests first
            check_flat(x)  # raises, or passes a subclass of Tensor
        d = x.numel()
        known = self._plans.get((d, density))  # a run asks for the same few every step
        if known is None:
            check_flat(x)  # the rest of it (empty, not floating) before a plan is learned
            known = self._learn(d, density, x.is_cpu)
        k, plan, work = known  # a known d with a non-floating x: topk_indices raises
        if work and x.dtype is torch.float32 and kernels.usable(x):
            # select and gather in one compiled call
            msg = kernels.topk_message(x, k, plan, work)
            if msg is None:
                check_finite(x, "x")  # raises
            return msg
        return gather_message(x, topk_indices(x, k, self._scratch), self.value_dtype)

    def _learn(self, d: int, density: float, cpu: bool) -> tuple[int, Any, int]:
        """Remember ``(k, kernel_plan(d, k), work)`` for (d, density); work is 0 where the
        compiled message does not apply (no compiled module, x not on the CPU when first
        seen, float16 values, or 2**31 entries or more, whose indices need int64)."""
        k = k_from_density(density, d)  # checks density
        work = 0
        compiled = kernels.compiled() and cpu and self.value_dtype == torch.float32
        if compiled and d < INT32_LIMIT:
            if self._work.numel() < d:
                self._work = torch.empty(d)  # grown: the addresses remembered so far lapse
                self._plans.clear()
            work = self._work.data_ptr()
        if len(self._plans) >= PLANS_KEPT:
            self._plans.clear()
        known = self._plans[(d, density)] = (k, kernel_plan(d, k), work)
        return known

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_keys(state, set(), f"compressor {self.name!r}")

    def __repr__(self) -> str:
        return f"TopKCompressor(value_dtype={self.value_dtype})"
