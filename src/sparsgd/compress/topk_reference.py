"""Sort-based exact top-k: the reference every faster selection is checked against.

    order = stable_sort(|x|, descending)    # ties keep ascending index order
    keep  = order[:k]                        # so ties are broken by the lower index
    return sort(keep)                        # indices ascending

A full sort costs O(d log d): this is the ground truth for tests, not a fast path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sparsgd.compress.checks import check_flat, check_k

__all__ = ["topk_reference"]


def topk_reference(x: Tensor, k: int) -> Tensor:
    """Indices (int64, ascending) of the ``k`` largest ``|x_i|``, ties to the lower index."""
    check_flat(x)
    check_k(k, x.numel())
    order = torch.sort(x.abs(), descending=True, stable=True).indices
    return torch.sort(order[:k]).values
