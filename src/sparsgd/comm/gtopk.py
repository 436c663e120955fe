"""gTop-k S-SGD (Shi et al., ICDCS 2019): k global entries in O(k log P) traffic per rank.

On rank i of P, with ``p_i = e_i + g_i`` (docs/algorithms.md, gTop-k tree and residual rule):

    # (1) c_i = top_k(|p_i|)                        k entries, ties to the lower index
    # (2) tree reduction in R = ceil(log2 P) rounds: in round r a rank that is a multiple of
    #     2^(r+1) receives the set of rank + 2^r (if it exists) and merges it into its own:
    #         u = held + theirs (values added at shared indices);  held = top_k(|u|)
    #     the sender drops out; rank 0 ends with the global set G, |G| = k
    # (3) rank 0 broadcasts G back down the same tree, every rank forwarding it to its
    #     children, the largest subtree first
    # (4) total = dense(G) on every rank (the loop divides by P);
    #     e_i = p_i - c_i + (merged values this rank dropped in its merges of (2))

Finite sets whose sum overflows (two values near the dtype's largest at one index): the rank
whose merge of (2) finds it adds OVERFLOW to the status it sends on, merges nothing more and
sends its set unmerged; the broadcast of (3) carries the status to every rank, and every rank
raises the same NonFiniteError, as dense does for its sum. No rank raises alone, so none is
left waiting in a receive, and the group works on after.

Residual rule of (4): the merging rank keeps the merged values it drops, so every value of
every p_i ends either in G or in exactly one residual, and ``sum_i e_i + total == sum_i p_i``
holds exactly (up to the rounding of the merge sums), with no extra communication. The paper
instead has every rank zero its own entries at the global indices, ``e_i = p_i`` with
``p_i[G]`` removed: a rank whose value at some j in G was dropped in an earlier merge (so the
applied G[j] left it out) loses that value, which breaks the invariant.

``exact`` (collective ``gtopk_exact``): the tree only agrees on the index set G.

    # (3') rank 0 broadcasts the k indices of G (4k bytes, no values)
    # (4') v = all_reduce(p_i[G]);  total = dense(G, v);  e_i = p_i with G zeroed;  sent = G
    #      v not finite (finite p_i whose sum overflows, identical on every rank): all raise

so the applied values are the exact sums over all ranks and the merges need no residual rule.

Messages of (2) and (3) are one buffer each (comm/wire.py) of exactly k entries after an
8-byte status header: the status of the sender's subtree on the way up (the sum of the
flags of comm/base.py, plus OVERFLOW for each merge that overflowed), and the sum over all
ranks on the way down, so the input check costs no message. Rank 0 receives R and sends R
messages: 2 ceil(log2 P) on the critical path, each of 8 + 8k bytes (gtopk) or 8 + 4k bytes
on the way down (gtopk_exact); any other rank sends and receives fewer. Buffers are reused
across calls (no d-sized allocation).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.distributed as dist
from torch import Tensor

from sparsgd.comm.base import InputCheck, Workspace, check_compressor, select_topk
from sparsgd.comm.stats import Ledger, Reduced
from sparsgd.comm.wire import HEADER_NBYTES, entry_nbytes, open_link, pack_, unpack
from sparsgd.compress import kernels
from sparsgd.compress.base import Compressor
from sparsgd.compress.checks import NonFiniteError, check_finite
from sparsgd.compress.message import SparseMessage
from sparsgd.compress.topk import topk_indices

__all__ = ["OVERFLOW", "GTopk", "GTopkExact", "children", "merge", "n_rounds", "parent"]

OVERFLOW = 1 << 32  # status of a merge whose sums overflowed; input flags count below it


def n_rounds(world: int) -> int:
    """``ceil(log2 world)``: the number of reduction (and of broadcast) rounds."""
    _check_rank(0, world)
    return (world - 1).bit_length()


def children(rank: int, world: int) -> list[int]:
    """The ranks ``rank`` receives from in (2), in round order: ``rank + 2^r`` for the rounds
    r below the number of trailing zero bits of ``rank`` (all R rounds for rank 0)."""
    _check_rank(rank, world)
    rounds = n_rounds(world) if rank == 0 else (rank & -rank).bit_length() - 1
    return [rank + (1 << r) for r in range(rounds) if rank + (1 << r) < world]


def parent(rank: int) -> int:
    """Where ``rank`` (> 0) sends its merged set: ``rank`` with its lowest set bit cleared."""
    if rank < 1:
        raise ValueError(f"rank must be >= 1 (rank 0 is the root and has no parent); got {rank}")
    return rank & (rank - 1)


def merge(a: SparseMessage, b: SparseMessage, k: int) -> tuple[SparseMessage, SparseMessage]:
    """(2) ``(kept, dropped)``: the ``k`` largest-magnitude entries of ``a + b``, and the rest.

    ``dense(kept) + dense(dropped) == dense(a) + dense(b)`` exactly. Each index occurs at
    most twice in ``a ++ b``, so every merged value is one IEEE addition (commutative): the
    result is the same bit for bit in any process and either argument order. Raises
    NonFiniteError if a merged value is NaN or Inf (finite values whose sum overflows).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}")
    union, summed = _union_sum(a, b)
    if union.numel() <= k:
        check_finite(summed, "a + b")  # the top-k below notices NaN/Inf; nothing does here
        return SparseMessage(union, summed, a.numel), SparseMessage(union[:0], summed[:0], a.numel)
    # positions in `union` follow index order: topk_indices' lower-position tie-break is the
    # lower-index tie-break of the rule
    chosen = topk_indices(summed, k)  # (k,) ascending positions in union
    if kernels.usable(summed):
        lost = kernels.complement(chosen, union.numel())  # the other positions, ascending
        kept = SparseMessage(union[chosen], summed[chosen], a.numel)
        return kept, SparseMessage(union[lost], summed[lost], a.numel)
    keep = torch.zeros(union.numel(), dtype=torch.bool, device=union.device)
    keep[chosen] = True
    kept = SparseMessage(union[keep], summed[keep], a.numel)
    return kept, SparseMessage(union[~keep], summed[~keep], a.numel)


def _union_sum(a: SparseMessage, b: SparseMessage) -> tuple[Tensor, Tensor]:
    """``(union, summed)``: the indices of ``a`` or ``b`` ascending, values added where both
    hold one (into zeros, so each value is ``(0 + a_j) + b_j``); one compiled linear merge
    where the values' dtype allows (the same bits), else sort, unique and index_add."""
    a_idx, b_idx = a.indices.long().contiguous(), b.indices.long().contiguous()
    same = a.values.dtype == b.values.dtype
    if same and kernels.usable(a.values) and kernels.usable(b.values):
        return kernels.union_sum(a_idx, a.values, b_idx, b.values)
    indices, order = torch.sort(torch.cat([a_idx, b_idx]), stable=True)
    values = torch.cat([a.values, b.values])[order]
    union, slot = torch.unique_consecutive(indices, return_inverse=True)  # (u,), (2n,)
    summed = torch.zeros(union.numel(), dtype=values.dtype, device=values.device)
    return union, summed.index_add_(0, slot, values)


class GTopk:
    """``gtopk``: tree reduce-and-broadcast of top-k sets, merged by magnitude."""

    name = "gtopk"
    exact = False  # True: broadcast G only, then all-reduce the exact values (3'), (4')

    def __init__(
        self, group: dist.ProcessGroup | None = None, compressor: Compressor | None = None
    ) -> None:
        check_compressor(self.name, compressor, ("topk",))
        self._link = open_link(group, self.name)
        self._check = InputCheck(self.name, self._link)  # finiteness by the selection (1)
        self._work = Workspace()
        self._up = torch.empty(0, dtype=torch.uint8)  # tree message of (2)
        self._down = torch.empty(0, dtype=torch.uint8)  # broadcast message of (3)

    def reduce(self, p: Tensor, density: float, *, overwrite: bool = False) -> Reduced:
        return self._check.run(p, density, partial(self._attempt, overwrite=overwrite))

    def _attempt(
        self, p: Tensor, density: float, status: int, ledger: Ledger, overwrite: bool
    ) -> Reduced | None:
        numel, k, dtype = self._check.agreed
        self._open_buffers(numel, k, dtype, p.device)
        p = p.detach()  # (d,) the collective never builds autograd graphs
        with ledger.phase("select"):
            local, status = self._select(p, status)  # (1)
        held, dropped, flagged = self._reduce_to_root(local, status, ledger)  # (2)
        final, flagged = self._broadcast(held, flagged, ledger)  # (3)
        if flagged % OVERFLOW > 0:
            return None  # a rank flagged its input: the handshake reports it
        if flagged > 0:
            self._raise_overflow("in a merge of the tree")
        if self.exact:
            values = p[final.indices].contiguous()  # (k,) p_i[G]
            self._link.all_reduce_(values, ledger)  # (4') sum_i p_i[G]
            if not bool(values.isfinite().all()):  # the same k values on every rank
                self._raise_overflow("at the k global indices")
            final = SparseMessage(final.indices, values, numel)
        with ledger.phase("apply"):
            self._work.open_(numel, dtype, p.device)
            total = self._work.add_to_total_(final)  # (4), (4')
            if self.exact:
                sent = final.indices
                mine = SparseMessage(sent, p[sent], numel)  # values read before p changes
                residual = self._work.residual_from_(p, mine, overwrite)
            else:
                sent, residual = local.indices, self._work.residual_from_(p, local, overwrite)
                for lost in dropped:
                    lost.add_to_(residual)
        return Reduced(total, residual, sent, ledger.stats)

    def _raise_overflow(self, where: str) -> None:
        dtype = self._check.agreed.dtype
        raise NonFiniteError(
            f"{self.name}: every rank's p is finite but their sum overflows {dtype} {where}"
        )

    def _select(self, p: Tensor, status: int) -> tuple[SparseMessage, int]:
        """(1) ``(c_i, 0)``, or a placeholder and status 1 if the input is flagged or holds
        NaN/Inf (the selection notices them at no extra cost: comm/base.py, (2a))."""
        numel, k, dtype = self._check.agreed  # a flagged p may have another size or dtype
        if status == 0:
            try:
                return select_topk(p, k, self._work.scratch), 0
            except NonFiniteError:
                pass
        return _placeholder(numel, k, dtype, p), 1

    def _reduce_to_root(
        self, held: SparseMessage, flagged: int, ledger: Ledger
    ) -> tuple[SparseMessage, list[SparseMessage], int]:
        """(2) ``(held, sets dropped in this rank's merges, status of this subtree)``."""
        link, k, dropped = self._link, held.indices.numel(), []
        for child in children(link.rank, link.world):
            link.recv_into(self._up, child, ledger, HEADER_NBYTES)
            theirs_flagged, theirs = unpack(self._up, k, held.numel, held.values.dtype, True)
            flagged += theirs_flagged
            if flagged == 0:  # a flagged subtree sends a placeholder: nothing to merge
                with ledger.phase("select"):
                    try:
                        held, lost = merge(held, theirs, k)
                    except NonFiniteError:  # finite sets, overflowing sums: tell every rank
                        flagged += OVERFLOW
                        continue
                dropped.append(lost)
        if flagged == 0 and held.indices.numel() != k:
            got = held.indices.numel()
            raise RuntimeError(f"gTop-k tree: merged set has {got} entries, not k = {k}")
        if link.rank > 0:
            pack_(self._up, held, flagged)
            link.send_all(self._up, [parent(link.rank)], ledger, HEADER_NBYTES)
        return held, dropped, flagged

    def _broadcast(
        self, held: SparseMessage, flagged: int, ledger: Ledger
    ) -> tuple[SparseMessage, int]:
        """(3) ``(G, flags of all ranks)`` on every rank; G is rank 0's ``held``."""
        link, k, numel = self._link, held.indices.numel(), held.numel
        value_dtype = None if self.exact else held.values.dtype
        if link.rank == 0:
            pack_(self._down, held, flagged, values=not self.exact)
        else:
            link.recv_into(self._down, parent(link.rank), ledger, HEADER_NBYTES)
        kids = children(link.rank, link.world)[::-1]  # largest subtree first
        if kids:
            link.send_all(self._down, kids, ledger, HEADER_NBYTES)
        if link.rank == 0:
            return held, flagged
        flagged, final = unpack(self._down, k, numel, value_dtype, True)
        return final, flagged

    def _open_buffers(self, numel: int, k: int, dtype: torch.dtype, device: torch.device) -> None:
        up = HEADER_NBYTES + k * entry_nbytes(numel, dtype)
        down = HEADER_NBYTES + k * entry_nbytes(numel, None if self.exact else dtype)
        if self._up.numel() != up or self._down.numel() != down or self._up.device != device:
            self._up = torch.zeros(up, dtype=torch.uint8, device=device)
            self._down = torch.zeros(down, dtype=torch.uint8, device=device)


class GTopkExact(GTopk):
    """``gtopk_exact``: gTop-k's index set G, then an exact all-reduce of its k values."""

    name = "gtopk_exact"
    exact = True


def _placeholder(numel: int, k: int, dtype: torch.dtype, like: Tensor) -> SparseMessage:
    """What a flagged rank sends up the tree: k entries of the agreed size, never merged."""
    indices = torch.arange(k, dtype=torch.int64, device=like.device)
    return SparseMessage(indices, torch.zeros(k, dtype=dtype, device=like.device), numel)


def _check_rank(rank: int, world: int) -> None:
    if world < 1:
        raise ValueError(f"world size must be >= 1; got {world}")
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in [0, {world}); got {rank}")
