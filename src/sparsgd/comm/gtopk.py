"""gTop-k S-SGD (Shi et al., ICDCS 2019): k global entries in O(k log P) traffic per rank.

On rank i of P, with ``p_i = e_i + g_i``:

    # (1) L_i = top_k(|p_i|);  e_i = p_i - p_i restricted to L_i
    # (2) tree reduction in ceil(log2 P) rounds (comm/tree.py): a receiver merges its partner's
    #     set into its own (comm/merge.py) and adds the merged values it dropped to e_i
    # (3) rank 0 broadcasts the final k (index, value) pairs back down the tree
    # (4) total = dense(final set), the same on every rank (the loop divides by P)

The residual rule of (2) (docs/algorithms.md section 3, item 5) keeps the invariant exactly:
every value of every p_i ends either in the final set or in exactly one residual, with no
extra communication. Cost: messages of k entries (8k bytes); rank 0 receives ceil(log2 P)
and sends ceil(log2 P), the critical path 2 ceil(log2 P) (alpha + 8k beta); other ranks less.
"""

from __future__ import annotations

import torch.distributed as dist
from torch import Tensor

from sparsgd.comm.accounting import Ledger
from sparsgd.comm.agree import agree_on_input
from sparsgd.comm.base import check_compressor
from sparsgd.comm.link import open_link
from sparsgd.comm.sparse_set import add_dropped_, residual_after, scatter_dense, select_topk
from sparsgd.comm.stats import Reduced
from sparsgd.comm.tree_ops import broadcast_buffer, reduce_to_root
from sparsgd.comm.wire import entry_nbytes, pack, unpack
from sparsgd.compress.base import Compressor

__all__ = ["GTopk"]


class GTopk:
    """``gtopk``: tree reduce-and-broadcast of top-k sets, merged by magnitude."""

    name = "gtopk"

    def __init__(
        self, group: dist.ProcessGroup | None = None, compressor: Compressor | None = None
    ) -> None:
        check_compressor(self.name, compressor, ("topk",))
        self._link = open_link(group, self.name)

    def reduce(self, p: Tensor, density: float) -> Reduced:
        link, ledger, numel = self._link, Ledger(self._link.device), p.numel()
        k = agree_on_input(p, density, link, ledger, self.name)
        p = p.detach()  # (d,) the collective never builds autograd graphs
        with ledger.phase("select"):
            local = select_topk(p, k)  # (1)
        with ledger.phase("apply"):
            residual = residual_after(p, local)
        root_set, dropped = reduce_to_root(local, k, numel, link, ledger)  # (2)
        with ledger.phase("apply"):
            for lost in dropped:
                add_dropped_(residual, lost)
        packed = None if root_set is None else pack(root_set, numel)
        nbytes = k * entry_nbytes(numel, p.dtype)
        buffer = broadcast_buffer(packed, nbytes, link, ledger, p.device)  # (3)
        with ledger.phase("apply"):
            total = scatter_dense(unpack(buffer, k, numel, p.dtype), numel, p.dtype)  # (4)
        return Reduced(total, residual, local.indices, ledger.stats)
