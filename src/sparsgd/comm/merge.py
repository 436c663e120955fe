"""The gTop-k merge rule (Shi et al., ICDCS 2019), as pure tensor math.

When a rank of the tree receives the sparse set ``b`` of its partner while holding ``a``
(both :class:`~sparsgd.comm.sparse_set.Entries`), it

    # (1) u = a + b                        # union; values added where an index is in both
    # (2) K = top_k(|u|), ties to the lower index
    # (3) kept = u restricted to K;  dropped = u outside K

so ``dense(kept) + dense(dropped) == dense(a) + dense(b)`` exactly: each merged value lands in
exactly one of the two. The rank that merges adds ``dropped`` to its own residual
(docs/algorithms.md section 3, item 5), which keeps the error-feedback invariant exact.

Each index occurs at most twice in ``a ++ b``, so every merged value is a single IEEE addition
``a_j + b_j``, which is commutative: the result is the same bit for bit in any process and in
any argument order, which is what lets :mod:`sparsgd.sim.collectives` match the multi-process
run element for element. Never imports ``torch.distributed``.
"""

from __future__ import annotations

import torch

from sparsgd.comm.sparse_set import Entries, topk_indices

__all__ = ["merge"]


def merge(a: Entries, b: Entries, k: int) -> tuple[Entries, Entries]:
    """``(kept, dropped)``: the ``k`` largest-magnitude entries of ``a + b``, and the rest."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}")
    # (1) union, summing at shared indices: sort the 2n indices, fold equal neighbours
    indices, order = torch.sort(torch.cat([a.indices, b.indices]), stable=True)
    values = torch.cat([a.values, b.values])[order]
    union, slot = torch.unique_consecutive(indices, return_inverse=True)  # (u,), (2n,)
    summed = torch.zeros(union.numel(), dtype=values.dtype, device=values.device)
    summed.index_add_(0, slot, values)
    if union.numel() <= k:
        return Entries(union, summed), Entries(union[:0], summed[:0])
    # (2) positions in `union` follow index order, so the lower-position tie-break of
    # topk_indices is the lower-index tie-break of the rule
    keep = torch.zeros(union.numel(), dtype=torch.bool, device=union.device)
    keep[topk_indices(summed, k)] = True
    # (3)
    return Entries(union[keep], summed[keep]), Entries(union[~keep], summed[~keep])
