"""Sparse sets and the local step every sparse collective starts with.

A sparse set over a flat tensor of d entries is ``Entries(indices, values)``: distinct int64
indices in ascending order and their values. With ``p = e + g`` on this rank (docs/algorithms.md
section 2) the local step is

    L = top_k(|p|)            # k indices, ties to the lower index, ascending
    c = p restricted to L     # what this rank offers
    e = p - c                 # zero on L, p elsewhere

(or ``c = C(p)`` for a given compressor C, in ``topk_allgather``). Summing the sets of P
ranks into one dense tensor is done in rank order, so the bits do not depend on who sums.
The top-k itself is :func:`sparsgd.compress.topk.topk_indices` (exact, ties to the lower
index). Pure tensor math: never imports
``torch.distributed``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from sparsgd.compress.base import Compressor
from sparsgd.compress.topk import topk_indices

__all__ = [
    "Entries",
    "add_dropped_",
    "residual_after",
    "scatter_dense",
    "select_local",
    "select_topk",
    "sum_in_rank_order",
    "topk_indices",
]


class Entries(NamedTuple):
    """A sparse set: ``indices`` (n,) int64 ascending and distinct, ``values`` (n,)."""

    indices: Tensor
    values: Tensor


def select_topk(p: Tensor, k: int) -> Entries:
    """The local set ``c``: the ``k`` largest-magnitude entries of ``p``."""
    indices = topk_indices(p, k)
    return Entries(indices, p[indices])


def residual_after(p: Tensor, sent: Entries) -> Tensor:
    """``e = p - c`` where ``c`` holds ``sent`` (a new tensor; ``p`` is not changed)."""
    residual = p.detach().clone(memory_format=torch.contiguous_format)
    residual[sent.indices] = p[sent.indices] - sent.values.to(p.dtype)
    return residual


def scatter_dense(entries: Entries, numel: int, dtype: torch.dtype) -> Tensor:
    """Dense ``(numel,)`` tensor of ``dtype`` holding ``entries``, zero elsewhere."""
    out = torch.zeros(numel, dtype=dtype, device=entries.values.device)
    out[entries.indices] = entries.values.to(dtype)
    return out


def add_dropped_(residual: Tensor, dropped: Entries) -> None:
    """Add the merged values a rank dropped to its ``residual`` (in place)."""
    residual.index_add_(0, dropped.indices, dropped.values.to(residual.dtype))


def select_local(p: Tensor, k: int, density: float, compressor: Compressor | None) -> Entries:
    """``c = C(p)`` as :class:`Entries`: exact top-k of ``k``, or what ``compressor`` keeps."""
    if compressor is None:
        return select_topk(p, k)
    msg = compressor.compress(p, density)
    if msg.numel != p.numel():
        raise ValueError(
            f"compressor {compressor.name!r} returned a message over numel={msg.numel}; "
            f"expected {p.numel()}"
        )
    return Entries(msg.indices.to(torch.int64), msg.values)


def sum_in_rank_order(sets: list[Entries], numel: int, dtype: torch.dtype) -> Tensor:
    """``sum_j dense(c_j)``, added rank 0 first (a fixed order: the same bits everywhere)."""
    device = sets[0].values.device
    total = torch.zeros(numel, dtype=dtype, device=device)
    for entries in sets:
        total.index_add_(0, entries.indices, entries.values.to(dtype))
    return total
