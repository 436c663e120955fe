"""Dense S-SGD: the allreduce of the whole flat tensor, the baseline of every comparison.

    # (1) total    = all_reduce(p) = sum_i p_i     # d values
    # (2) residual = 0                              # nothing is held back
    #     sent     = 0 .. d-1                       # every entry left the residual

``sent`` is one tensor reused across calls of the same size: read it, never write to it.

Cost (ring, docs/algorithms.md section 3): 2 (P - 1) messages and 2 (P - 1) / P * 4d bytes sent
per rank. The backend picks its own algorithm; the bytes are counted by that ring rule.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from sparsgd.comm.accounting import Ledger
from sparsgd.comm.agree import agree_on_input
from sparsgd.comm.base import check_compressor
from sparsgd.comm.link import open_link
from sparsgd.comm.stats import Reduced
from sparsgd.compress.base import Compressor

__all__ = ["DenseAllreduce"]


class DenseAllreduce:
    """``dense``: sum of every rank's ``p`` by one all_reduce."""

    name = "dense"

    def __init__(
        self, group: dist.ProcessGroup | None = None, compressor: Compressor | None = None
    ) -> None:
        check_compressor(self.name, compressor, ("dense",))
        self._link = open_link(group, self.name)
        self._every_index = torch.empty(0, dtype=torch.int64)  # `sent`, kept between calls

    def reduce(self, p: Tensor, density: float) -> Reduced:
        ledger = Ledger(self._link.device)
        agree_on_input(p, density, self._link, ledger, self.name)
        p = p.detach()  # (d,) the collective never builds autograd graphs
        with ledger.phase("apply"):
            total = p.clone(memory_format=torch.contiguous_format)  # (d,)
        self._link.all_reduce_(total, ledger)  # (1) total = sum_i p_i
        with ledger.phase("apply"):
            residual = torch.zeros_like(total)  # (2)
            sent = self._all_indices(total)
        return Reduced(total, residual, sent, ledger.stats)

    def _all_indices(self, like: Tensor) -> Tensor:
        """``0 .. d-1`` (int64), built once per size and device: 8d bytes not re-made per call."""
        if self._every_index.numel() != like.numel() or self._every_index.device != like.device:
            self._every_index = torch.arange(like.numel(), dtype=torch.int64, device=like.device)
        return self._every_index
