"""One pass that keeps the candidates ``|x_i| >= t``, and an exact top-k among candidates.

Both fast selections (exact ``topk`` and DGC-style ``sampled``) and ``threshold`` share them:

    C     = { i : |x_i| >= t }                  # (1) one chunked pass over x
    v     = k-th largest of |x_C|               # (2) quickselect on the few candidates
    keep  = { i in C : |x_i| > v }              # (3) strictly above v ...
          + first (k - |keep|) of { i in C : |x_i| == v } in index order   # ... ties to lower i

Where the install compiled :mod:`sparsgd.compress.kernels`, both steps run there (one loop
each, the same indices). Otherwise step (1) walks x in chunks of :data:`CHUNK` entries
through reused buffers from a :class:`~sparsgd.compress.scratch.Scratch`, so it never writes
a tensor the size of x. On CPU it runs in numpy on views of the same memory:
``np.flatnonzero`` finds the kept positions about twice as fast as ``torch.nonzero``, with
identical indices, and numpy runs on one thread whatever torch's thread setting, so a busy
machine cannot stall it on a descheduled thread. (In numpy, a block pass, per-block max and
min by two vectorised reductions then a re-read of the hit blocks, measured no faster at
density 1e-3; in the compiled loop the same idea is what makes it one read.)

The test is written ``not (|x_i| < t)`` so that a NaN is always a candidate; an Inf is one
for every finite t. Hence a non-finite x is always noticed by looking at the candidates only,
and :func:`candidates_at_least` raises
:class:`~sparsgd.compress.checks.NonFiniteError` for it at no extra cost.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sparsgd.compress import kernels
from sparsgd.compress.checks import check_finite
from sparsgd.compress.scratch import Scratch

__all__ = ["CHUNK", "candidates_at_least", "numpy_ok", "select_exact"]

CHUNK = 1 << 18  # entries per chunk of the direct pass: 1 MB of float32, stays in cache
NUMPY_DTYPES = (torch.float16, torch.float32, torch.float64)


def candidates_at_least(
    x: Tensor, t: Tensor | float, scratch: Scratch | None = None
) -> tuple[Tensor, Tensor]:
    """``(indices, magnitudes)`` of every entry with ``|x_i| >= t``; indices int64 ascending.

    ``scratch``: work buffers reused across calls (a fresh one when None). Raises
    NonFiniteError if ``x`` holds NaN or Inf. Does not modify ``x``.
    """
    x = x.detach()  # the out= buffers below take no autograd history
    scratch = scratch if scratch is not None else Scratch()
    if kernels.usable(x):
        indices, magnitudes = kernels.candidates(x, float(t), scratch)  # (1) compiled
    else:
        indices, magnitudes = _direct_pass(x, float(t), scratch)  # (1)
    if magnitudes.numel() > 0 and not bool(torch.isfinite(magnitudes).all()):
        check_finite(x, "x")  # raises, with the counts over the whole of x
    return indices, magnitudes


def numpy_ok(x: Tensor) -> bool:
    """Whether x can be read through numpy without a copy (CPU, float16/32/64)."""
    return x.device.type == "cpu" and x.dtype in NUMPY_DTYPES


def _direct_pass(x: Tensor, t: float, scratch: Scratch) -> tuple[Tensor, Tensor]:
    """Step (1) in chunks of CHUNK entries: numpy on CPU for its faster nonzero, else torch."""
    d = x.numel()
    chunk = d if x.device.type != "cpu" else min(CHUNK, d)
    abs_buf = scratch.take("chunk_abs", chunk, x.dtype, x.device)  # (chunk,) |x| of one chunk
    mask_buf = scratch.take("chunk_mask", chunk, torch.bool, x.device)
    if numpy_ok(x):
        return _numpy_chunks(x.numpy(), t, abs_buf.numpy(), mask_buf.numpy())
    found_idx: list[Tensor] = []
    found_abs: list[Tensor] = []
    for start in range(0, d, chunk):
        part = x[start : start + chunk]
        n = part.numel()
        mags = torch.abs(part, out=abs_buf[:n])
        below = torch.lt(mags, t, out=mask_buf[:n])
        keep = torch.logical_not(below, out=below)  # NaN -> kept
        idx = keep.nonzero().squeeze(1)
        found_abs.append(mags[idx])
        found_idx.append(idx + start)
    return torch.cat(found_idx), torch.cat(found_abs)


def _numpy_chunks(
    a: np.ndarray, t: float, abs_buf: np.ndarray, mask_buf: np.ndarray
) -> tuple[Tensor, Tensor]:
    """The direct pass on numpy views of x and of the scratch buffers (shared memory)."""
    chunk = abs_buf.size
    found_idx: list[np.ndarray] = []
    found_abs: list[np.ndarray] = []
    for start in range(0, a.size, chunk):
        part = a[start : start + chunk]
        n = part.size
        mags = np.abs(part, out=abs_buf[:n])
        below = np.less(mags, t, out=mask_buf[:n])
        idx = np.flatnonzero(np.logical_not(below, out=below))  # NaN -> kept
        found_abs.append(mags[idx])
        found_idx.append(idx.astype(np.int64, copy=False) + start)
    return torch.from_numpy(np.concatenate(found_idx)), torch.from_numpy(np.concatenate(found_abs))


def select_exact(indices: Tensor, magnitudes: Tensor, k: int) -> Tensor:
    """Exact top-k among candidates given in ascending index order; ties to the lower index.

    ``indices`` (m,) int64 ascending, ``magnitudes`` (m,) their ``|x|``, ``1 <= k <= m``.
    Returns the chosen ``(k,)`` int64 indices, ascending, in a new tensor (never a view of
    ``indices``, which may be a scratch buffer).
    """
    m = magnitudes.numel()
    if k == m:
        return indices.clone()
    if kernels.usable(magnitudes) and indices.dtype == torch.int64 and indices.is_contiguous():
        return kernels.select(indices, magnitudes, k)  # (2) and (3), compiled
    kth = torch.kthvalue(magnitudes, m - k + 1).values  # (2) k-th largest
    keep = magnitudes > kth  # (3) strictly above
    missing = k - int(keep.sum())
    ties = (magnitudes == kth).nonzero().squeeze(1)[:missing]  # ascending index order
    keep[ties] = True
    return indices[keep]
