"""Top-k S-SGD: every rank's sparse set, all-gathered and summed into their union.

On rank i, with ``c_i = C(p_i)`` (exact top-k unless a compressor is given):

    # (1) c_i = C(p_i)
    # (2) h = all_gather([n_i, value dtype code])      # n_i = len(c_i), or a negative code
    # (3) B = all_gather(pack(c_i) padded to max(n))   # one buffer of max(n) entries per rank
    # (4) total = sum over j = 0 .. P-1 of dense(c_j)  # added in rank order, on every rank
    #     e_i = p_i - c_i
    #     total not finite where some c_j lands (finite sets whose sum overflows; the same
    #     bits on every rank): every rank raises, as dense does for its sum

So every rank ends with the union of up to kP distinct indices, summed. Cost per rank (ring
all-gather, docs/algorithms.md cost model): (P - 1) (16 + max(n) * 8) bytes sent, O(kP), in
2 (P - 1) messages. Padding is sent, so it is counted.

The length of (2) also carries the status of the call, so nothing else is sent for it:
``FLAGGED`` when this rank's input failed the check of comm/base.py, NaN/Inf that the exact
top-k of (1) found included (every rank then runs the handshake there and raises or retries),
and ``FAILED_NONFINITE`` / ``FAILED_OTHER`` when the
compressor raised on this rank only (float16 values that overflow, a scaled randomk value
past 65504): every rank then raises, the failing one its own error, instead of leaving the
others blocked in the all-gather of (3). ``total`` and ``residual`` are reused buffers.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.distributed as dist
from torch import Tensor

from sparsgd.comm.base import DTYPE_CODES, InputCheck, Workspace, select_topk
from sparsgd.comm.stats import Ledger, Reduced
from sparsgd.comm.wire import Link, entry_nbytes, open_link, pack_, unpack
from sparsgd.compress.base import Compressor
from sparsgd.compress.checks import NonFiniteError
from sparsgd.compress.message import SparseMessage
from sparsgd.compress.scratch import Scratch

__all__ = ["TopkAllgather", "select_local"]

# Lengths sent in the header of (2) instead of n_i (lengths are >= 0).
FAILED_NONFINITE, FAILED_OTHER, FLAGGED = -1, -2, -3


def select_local(
    p: Tensor, k: int, density: float, compressor: Compressor | None, scratch: Scratch | None = None
) -> SparseMessage:
    """(1) ``c = C(p)`` with int64 indices: exact top-k of ``k`` (work buffers of ``scratch``),
    or what ``compressor`` keeps."""
    if compressor is None:
        return select_topk(p, k, scratch)
    msg = compressor.compress(p, density)
    if msg.numel != p.numel():
        raise ValueError(
            f"compressor {compressor.name!r} returned a message over numel={msg.numel}; "
            f"expected {p.numel()}"
        )
    return SparseMessage(msg.indices.long(), msg.values, msg.numel)


class TopkAllgather:
    """``topk_allgather``: union of all ranks' sparse sets, O(kP) traffic per rank."""

    name = "topk_allgather"

    def __init__(
        self, group: dist.ProcessGroup | None = None, compressor: Compressor | None = None
    ) -> None:
        self._link = open_link(group, self.name)
        self._compressor = compressor
        # finiteness: by the exact top-k (1) itself, by a pass before a compressor's
        self._check = InputCheck(self.name, self._link, scan_finite=compressor is not None)
        self._work = Workspace()
        self._send = torch.empty(0, dtype=torch.uint8)  # padded set of (3), grown as needed

    def reduce(self, p: Tensor, density: float, *, overwrite: bool = False) -> Reduced:
        return self._check.run(p, density, partial(self._attempt, overwrite=overwrite))

    def _attempt(
        self, p: Tensor, density: float, status: int, ledger: Ledger, overwrite: bool
    ) -> Reduced | None:
        numel, k, dtype = self._check.agreed
        p = p.detach()  # (d,) the collective never builds autograd graphs
        mine, failure = _empty(numel, p), None
        if status == 0:
            with ledger.phase("select"):
                mine, failure = self._select(p, k, density)  # (1)
            if self._compressor is None and isinstance(failure, NonFiniteError):
                mine, failure, status = _empty(numel, p), None, 1  # NaN/Inf in p: flag it
        length = FLAGGED if status else (_failed_length(failure) if failure else mine.nnz)
        rows = _gather_headers(length, mine.values.dtype, self._link, ledger)  # (2)
        if any(n == FLAGGED for n, _ in rows):
            return None
        sets = self._gather_sets(mine, failure, rows, ledger)  # (3)
        with ledger.phase("apply"):
            self._work.open_(numel, dtype, p.device)
            total = self._work.total
            for theirs in sets:  # (4)
                self._work.add_to_total_(theirs)
            if not all(bool(total[s.indices].isfinite().all()) for s in sets):
                raise NonFiniteError(
                    f"{self.name}: every rank's p is finite but their sum overflows {dtype}"
                )
            residual = self._work.residual_from_(p, mine, overwrite)
        return Reduced(total, residual, mine.indices, ledger.stats)

    def _select(self, p: Tensor, k: int, density: float) -> tuple[SparseMessage, Exception | None]:
        """``(c_i, None)``, or an empty set and the error the compressor raised on this rank."""
        try:
            return select_local(p, k, density, self._compressor, self._work.scratch), None
        except Exception as exc:  # any error: the other ranks must learn of it, not hang (3)
            return _empty(p.numel(), p), exc

    def _gather_sets(
        self,
        mine: SparseMessage,
        failure: Exception | None,
        rows: list[list[int]],
        ledger: Ledger,
    ) -> list[SparseMessage]:
        """(3) every rank's set, rank 0 first, from one padded all-gather."""
        _raise_if_failed(failure, [n for n, _ in rows])
        codes = [c for _, c in rows]
        if 0 in codes or len(set(codes)) > 1:
            raise ValueError(
                f"every rank must send values of one dtype among {list(DTYPE_CODES)}; "
                f"got dtype codes {codes} (rank 0 first, 0 = unsupported)"
            )
        value_dtype, numel = mine.values.dtype, mine.numel
        width = max(n for n, _ in rows) * entry_nbytes(numel, value_dtype)  # bytes per rank
        if self._send.numel() < width or self._send.device != mine.values.device:
            self._send = torch.zeros(width, dtype=torch.uint8, device=mine.values.device)
        pack_(self._send, mine)
        gathered = self._link.all_gather(self._send[:width], ledger)
        pairs = zip(gathered, rows, strict=True)
        return [unpack(buffer, n, numel, value_dtype)[1] for buffer, (n, _) in pairs]


def _empty(numel: int, like: Tensor) -> SparseMessage:
    empty = torch.zeros(0, dtype=torch.float32, device=like.device)
    return SparseMessage(empty.long(), empty, numel)


def _gather_headers(
    length: int, value_dtype: torch.dtype, link: Link, ledger: Ledger
) -> list[list[int]]:
    """(2) ``[(n_j, dtype code_j) for every rank j]``; code 0: not a wire dtype."""
    code = DTYPE_CODES.get(value_dtype, 0)
    header = torch.tensor([length, code], dtype=torch.int64, device=link.device)
    return torch.stack(link.all_gather(header, ledger)).tolist()  # (P, 2)


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
