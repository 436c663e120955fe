"""Top-k S-SGD: every rank's sparse set, all-gathered and summed into their union.

On rank i, with ``c_i = C(p_i)`` (exact top-k unless a compressor is given):

    # (1) c_i = C(p_i);  e_i = p_i - c_i
    # (2) n = all_gather(len(c_i), value dtype)        # the sets may differ in length
    # (3) B = all_gather(pack(c_i) padded to max(n))   # one buffer of max(n) entries per rank
    # (4) total = sum over j = 0 .. P-1 of dense(c_j)  # added in rank order, on every rank

So every rank ends with the union of up to kP distinct indices, summed. Cost per rank (ring
all-gather, docs/algorithms.md section 3): (P - 1) (16 + max(n) * 8) bytes sent, O(kP), in
2 (P - 1) messages. Padding is sent, so it is counted.

A compressor may raise on one rank only after the input check passed (float16 values that
overflow, a scaled randomk value past 65504): that rank sends a negative length in the header
of (2), and every rank raises, the failing one its own error, instead of leaving the others
blocked in the all-gather of (3).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from sparsgd.comm.accounting import Ledger
from sparsgd.comm.agree import DTYPE_CODES, agree_on_input
from sparsgd.comm.link import Link, open_link
from sparsgd.comm.sparse_set import (
    Entries,
    residual_after,
    select_local,
    sum_in_rank_order,
)
from sparsgd.comm.stats import Reduced
from sparsgd.comm.wire import entry_nbytes, pack, unpack
from sparsgd.compress.base import Compressor
from sparsgd.compress.checks import NonFiniteError

__all__ = ["TopkAllgather"]

# Length sent in the header of (2) by a rank whose compressor raised (lengths are >= 0).
FAILED_NONFINITE, FAILED_OTHER = -1, -2


class TopkAllgather:
    """``topk_allgather``: union of all ranks' sparse sets, O(kP) traffic per rank."""

    name = "topk_allgather"

    def __init__(
        self, group: dist.ProcessGroup | None = None, compressor: Compressor | None = None
    ) -> None:
        self._link = open_link(group, self.name)
        self._compressor = compressor

    def reduce(self, p: Tensor, density: float) -> Reduced:
        ledger = Ledger(self._link.device)
        k = agree_on_input(p, density, self._link, ledger, self.name)
        p = p.detach()  # (d,) the collective never builds autograd graphs
        with ledger.phase("select"):
            mine, failure = self._select(p, k, density)  # (1)
        sets = _exchange(mine, failure, p.numel(), self._link, ledger)  # (2), (3)
        with ledger.phase("apply"):
            residual = residual_after(p, mine)
            total = sum_in_rank_order(sets, p.numel(), p.dtype)  # (4)
        return Reduced(total, residual, mine.indices, ledger.stats)

    def _select(self, p: Tensor, k: int, density: float) -> tuple[Entries, Exception | None]:
        """``(c_i, None)``, or an empty set and the error the compressor raised on this rank."""
        try:
            return select_local(p, k, density, self._compressor), None
        except Exception as exc:  # any error: the other ranks must learn of it, not hang (3)
            empty = p[:0].to(torch.float32)
            return Entries(empty.to(torch.int64), empty), exc


def _exchange(
    mine: Entries, failure: Exception | None, numel: int, link: Link, ledger: Ledger
) -> list[Entries]:
    """Every rank's set, rank 0 first, through two all-gathers (lengths, then padded sets)."""
    value_dtype = mine.values.dtype
    code = DTYPE_CODES.get(value_dtype, 0)  # 0: not a wire dtype; every rank raises below
    length = mine.indices.numel() if failure is None else _failed_length(failure)
    header = torch.tensor([length, code], dtype=torch.int64, device=link.device)
    rows = torch.stack(link.all_gather(header, ledger)).tolist()  # (P, 2): length, dtype code
    _raise_if_failed(failure, [n for n, _ in rows])
    codes = [c for _, c in rows]
    if 0 in codes or len(set(codes)) > 1:
        raise ValueError(
            f"every rank must send values of one dtype among {list(DTYPE_CODES)}; "
            f"got dtype codes {codes} (rank 0 first, 0 = unsupported)"
        )
    width = max(n for n, _ in rows) * entry_nbytes(numel, value_dtype)  # bytes per rank
    buffer = torch.zeros(width, dtype=torch.uint8, device=mine.values.device)
    packed = pack(mine, numel)
    buffer[: packed.numel()] = packed
    gathered = link.all_gather(buffer, ledger)
    return [unpack(b, n, numel, value_dtype) for b, (n, _) in zip(gathered, rows, strict=True)]


def _failed_length(failure: Exception) -> int:
    return FAILED_NONFINITE if isinstance(failure, NonFiniteError) else FAILED_OTHER


def _raise_if_failed(failure: Exception | None, lengths: list[int]) -> None:
    """Every rank raises if some rank's compressor raised: its own error, or one naming it."""
    failed = [r for r, n in enumerate(lengths) if n < 0]
    if not failed:
        return
    if failure is not None:
        raise failure
    if all(lengths[r] == FAILED_NONFINITE for r in failed):
        raise NonFiniteError(
            f"topk_allgather: the compressor of rank(s) {failed} produced NaN or Inf values"
        )
    raise ValueError(f"topk_allgather: the compressor of rank(s) {failed} raised (see their error)")
