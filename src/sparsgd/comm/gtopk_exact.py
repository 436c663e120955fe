"""gTop-k with exact values: the tree only agrees on the index set G.

On rank i of P, with ``p_i = e_i + g_i`` (docs/algorithms.md section 3, item 6):

    # (1) L_i = top_k(|p_i|)
    # (2) the gTop-k tree reduction (same merges as ``gtopk``) gives G, |G| = k, on rank 0
    # (3) rank 0 broadcasts the k indices of G down the tree (4k bytes a message)
    # (4) v = all_reduce(p_i restricted to G)        # k values, summed exactly
    # (5) total = dense(G, v);  e_i = p_i with G zeroed

The applied values are the exact sums ``sum_i p_i[G]``, not the partial sums of the tree, so
the merges need no residual rule: every rank's whole ``p_i[G]`` is applied and the rest stays
in ``e_i``. ``sent`` is G (the entries that left this rank's residual), not L_i.
Cost per rank: the gTop-k reduction (8k-byte messages), the index broadcast (4k-byte
messages), plus a ring all-reduce of k float32 values, 2 (P - 1) ceil(k / P) * 4 bytes.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from sparsgd.comm.accounting import Ledger
from sparsgd.comm.agree import agree_on_input
from sparsgd.comm.base import check_compressor
from sparsgd.comm.link import open_link
from sparsgd.comm.sparse_set import Entries, residual_after, scatter_dense, select_topk
from sparsgd.comm.stats import Reduced
from sparsgd.comm.tree_ops import broadcast_buffer, reduce_to_root
from sparsgd.comm.wire import pack_indices, unpack_indices
from sparsgd.compress.base import Compressor
from sparsgd.compress.message import index_dtype

__all__ = ["GTopkExact"]


class GTopkExact:
    """``gtopk_exact``: gTop-k index set, then an exact all-reduce of its k values."""

    name = "gtopk_exact"

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
        root_set, _ = reduce_to_root(local, k, numel, link, ledger)  # (2)
        packed = None if root_set is None else pack_indices(root_set.indices, numel)
        nbytes = k * torch.empty((), dtype=index_dtype(numel)).element_size()
        buffer = broadcast_buffer(packed, nbytes, link, ledger, p.device)  # (3)
        with ledger.phase("apply"):
            chosen = unpack_indices(buffer, k, numel)  # G, (k,) int64 ascending
            values = p[chosen].contiguous()  # (k,)
        link.all_reduce_(values, ledger)  # (4)
        with ledger.phase("apply"):
            total = scatter_dense(Entries(chosen, values), numel, p.dtype)  # (5)
            residual = residual_after(p, Entries(chosen, p[chosen]))
        return Reduced(total, residual, chosen, ledger.stats)
