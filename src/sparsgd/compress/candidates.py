"""One pass that keeps the candidates ``|x_i| >= t``, and an exact top-k among candidates.

Both fast selections (exact ``topk`` and DGC-style ``sampled``) and ``threshold`` share them:

    C     = { i : |x_i| >= t }                  # (1) one chunked pass over x
    v     = k-th largest of |x_C|               # (2) quickselect on the few candidates
    keep  = { i in C : |x_i| > v }              # (3) strictly above v ...
          + first (k - |keep|) of { i in C : |x_i| == v } in index order   # ... ties to lower i

The pass walks x in chunks of :data:`CHUNK` entries through two reused buffers, so it never
allocates a tensor the size of x (a fresh 40 MB allocation alone costs about as much as the
whole pass on CPU). The test is written ``not (|x_i| < t)`` so that a NaN is always a
candidate; an Inf is one for every finite t. Hence a non-finite x is always noticed by
looking at the candidates only, and :func:`candidates_at_least` raises
:class:`~sparsgd.compress.checks.NonFiniteError` for it at no extra cost.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sparsgd.compress.checks import check_finite

__all__ = ["CHUNK", "candidates_at_least", "select_exact"]

CHUNK = 1 << 20  # entries per chunk: 4 MB of float32, small enough to stay in cache


def candidates_at_least(x: Tensor, t: Tensor | float) -> tuple[Tensor, Tensor]:
    """``(indices, magnitudes)`` of every entry with ``|x_i| >= t``; indices int64 ascending.

    Raises NonFiniteError if ``x`` holds NaN or Inf. Does not modify ``x``.
    """
    x = x.detach()  # the out= buffers below take no autograd history
    d = x.numel()
    chunk = d if x.device.type != "cpu" else min(CHUNK, d)
    abs_buf = torch.empty(chunk, dtype=x.dtype, device=x.device)  # (chunk,) |x| of one chunk
    mask_buf = torch.empty(chunk, dtype=torch.bool, device=x.device)
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
    indices = torch.cat(found_idx)
    magnitudes = torch.cat(found_abs)
    if magnitudes.numel() > 0 and not bool(torch.isfinite(magnitudes).all()):
        check_finite(x, "x")  # raises, with the counts over the whole of x
    return indices, magnitudes


def select_exact(indices: Tensor, magnitudes: Tensor, k: int) -> Tensor:
    """Exact top-k among candidates given in ascending index order; ties to the lower index.

    ``indices`` (m,) int64 ascending, ``magnitudes`` (m,) their ``|x|``, ``1 <= k <= m``.
    Returns the chosen ``(k,)`` int64 indices, ascending.
    """
    m = magnitudes.numel()
    if k == m:
        return indices
    kth = torch.kthvalue(magnitudes, m - k + 1).values  # (2) k-th largest
    keep = magnitudes > kth  # (3) strictly above
    missing = k - int(keep.sum())
    ties = (magnitudes == kth).nonzero().squeeze(1)[:missing]  # ascending index order
    keep[ties] = True
    return indices[keep]
