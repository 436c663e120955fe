"""Dense S-SGD: the all-reduce of the whole flat tensor, the baseline of every comparison.

On rank i of P, with a buffer B of d + 1 elements owned by the collective:

    # (1) m_i = max_j |p_ij| by one aminmax pass of p_i; NaN if p_i holds NaN/Inf or
    #     p_i's size/dtype/density differ from the agreed ones (the rank flags its input)
    # (2) B[:d] = p_i (no copy when p_i was written into B[:d] itself: staging);  B[d] = m_i
    # (3) all_reduce(B)                           # B[:d] = S = sum_i p_i;  B[d] = M = sum_i m_i
    # (4) M is NaN: some rank flagged; every rank runs the input check's handshake
    #     (comm/base.py), which raises (naming the ranks whose p_i is not finite) or retries
    # (5) M > finfo.max / (1 + 2 eps)^P: the bound cannot rule out an overflow, so test S
    #     itself (aminmax); NaN/Inf there: every rank raises that the finite p_i overflow
    # (6) total = S;  residual = 0;  sent = 0 .. d-1

Why (5) suffices: every p_ij is finite (else M is NaN) and |S_j| <= sum_i |p_ij| <= sum_i m_i.
The backend adds P values per entry by at most P - 1 rounded additions, each growing a bound
by at most a factor (1 + eps/2), and M is itself such a sum of the m_i; so while M stays below
the threshold of (5) no partial sum of any entry exceeds finfo.max, and S is finite. Gradients
come nowhere near it (float32: 3.4e38 / P), so the test of S is a rare fallback; M and S are
the same on every rank, so every rank takes the same branch and none is left waiting.

The finiteness test is thus one pass over p_i, before the exchange (``aminmax``: NaN and Inf
reach the min or the max; the max of |p_i| is what (5) needs, so ``sum``, measured about as
fast, would not do), and the only pass the collective makes when the caller stages p_i.

Staging: :meth:`DenseAllreduce.staging` lends the caller B[:d]; a ``p`` written there (the
sync step flattens the gradients into it) is reduced in place with no copy, and B[:d] then
holds the total. The exchange overwrites it, so a rank whose staged p_i the handshake of (4)
must still read (it flagged) keeps a copy of p_i before (3) and puts it back after; a rank
that did not flag but sees M = NaN fills B[:d] with zeros, which the handshake reads as the
finite input it was: the handshake then always raises, since a rank that flagged differs
from one that did not. Those copies are made only on the failing path.

``total``, ``residual`` and ``sent`` are views of buffers reused across calls of the same
size (see :mod:`sparsgd.comm.stats`): nothing of size d is allocated per call.

Cost (ring, docs/algorithms.md cost model): 2 (P - 1) messages and 2 (P - 1) ceil((d+1)/P)
* s bytes sent per rank, the appended status included. The backend picks its own algorithm;
the bytes are counted by that ring rule.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import Tensor

from sparsgd.comm.base import DTYPE_CODES, InputCheck, check_compressor
from sparsgd.comm.stats import Ledger, Reduced
from sparsgd.comm.wire import open_link
from sparsgd.compress.base import Compressor
from sparsgd.compress.checks import NonFiniteError, check_positive_int

__all__ = ["DenseAllreduce"]


class DenseAllreduce:
    """``dense``: sum of every rank's ``p`` by one all_reduce, status element appended."""

    name = "dense"

    def __init__(
        self, group: dist.ProcessGroup | None = None, compressor: Compressor | None = None
    ) -> None:
        check_compressor(self.name, compressor, ("dense",))
        self._link = open_link(group, self.name)
        self._check = InputCheck(self.name, self._link)  # finiteness by (1), before the sum
        self._buffer = torch.empty(0)  # (d + 1,) B
        self._zeros = torch.empty(0)  # (d,) the residual, always 0
        self._every_index = torch.empty(0, dtype=torch.int64)  # (d,) sent = 0 .. d-1

    def staging(
        self, numel: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None
    ) -> Tensor:
        """The ``(numel,)`` view B[:numel] of the reused buffer: a ``p`` written into it is
        reduced without a copy, and holds the total after the call (module docstring)."""
        check_positive_int(numel, "numel")
        if dtype not in DTYPE_CODES:
            raise TypeError(f"{self.name}: dtype must be one of {list(DTYPE_CODES)}; got {dtype}")
        device = torch.device("cpu") if device is None else torch.device(device)
        return self._buffers(numel, dtype, device)[:numel]

    def reduce(self, p: Tensor, density: float, *, overwrite: bool = False) -> Reduced:
        """``overwrite`` changes nothing here: the residual is 0, and a ``p`` written into
        :meth:`staging` is reduced in place whatever it says."""
        return self._check.run(p, density, self._attempt)

    def _attempt(self, p: Tensor, density: float, status: int, ledger: Ledger) -> Reduced | None:
        numel, dtype = self._check.agreed.numel, self._check.agreed.dtype
        device = p.device if isinstance(p, Tensor) else self._buffer.device  # flagged: not one
        buffer = self._buffers(numel, dtype, device)
        staged = _is_start_of(p, buffer)
        with ledger.phase("select"):
            bound = _largest_magnitude(p) if status == 0 else math.nan  # (1)
        kept = None  # this rank's staged p_i, kept only when the handshake will read it
        with ledger.phase("apply"):
            if staged and math.isnan(bound):
                kept = p.detach().clone()
            elif not staged and status == 0:
                buffer[:numel].copy_(p.detach())  # (2)
            buffer[numel] = bound
        self._link.all_reduce_(buffer, ledger, check_numel=1)  # (3)
        total_bound = float(buffer[numel])
        if math.isnan(total_bound):  # (4)
            if kept is not None:
                buffer[:numel].copy_(kept)  # the handshake reads p_i, the retry sends it
            elif staged:
                buffer[:numel].zero_()  # finite, like the p_i the exchange overwrote
            return None
        total = buffer[:numel]
        if total_bound > _safe_bound(dtype, self._link.world):  # (5)
            with ledger.phase("select"):
                finite = _is_finite(total)
            if not finite:
                raise NonFiniteError(
                    f"{self.name}: every rank's p is finite but their sum overflows {dtype} "
                    f"(NaN or Inf in the all-reduced total)"
                )
        return Reduced(total, self._zeros, self._every_index, ledger.stats)  # (6)

    def _buffers(self, numel: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """B, made again only when the size, dtype or device changes."""
        b = self._buffer
        if b.numel() != numel + 1 or b.dtype != dtype or b.device != device:
            self._buffer = torch.zeros(numel + 1, dtype=dtype, device=device)
            self._zeros = torch.zeros(numel, dtype=dtype, device=device)
            self._every_index = torch.arange(numel, dtype=torch.int64, device=device)
        return self._buffer


def _is_start_of(p: Tensor, buffer: Tensor) -> bool:
    """Whether ``p`` is exactly ``buffer[:numel]`` (same memory, dtype, device, contiguous)."""
    return (
        isinstance(p, Tensor)
        and p.data_ptr() == buffer.data_ptr()
        and p.dtype == buffer.dtype
        and p.device == buffer.device
        and p.numel() == buffer.numel() - 1
        and p.is_contiguous()
    )


def _largest_magnitude(p: Tensor) -> float:
    """(1) ``max_j |p_j|``, or NaN if ``p`` holds NaN or Inf: one ``aminmax`` pass."""
    low, high = (float(v) for v in torch.aminmax(p.detach()))
    if not (math.isfinite(low) and math.isfinite(high)):
        return math.nan
    return max(-low, high)


def _safe_bound(dtype: torch.dtype, world: int) -> float:
    """(5) the largest M for which no sum of P entries of |p_ij| <= m_i can overflow."""
    info = torch.finfo(dtype)
    return info.max / (1.0 + 2.0 * info.eps) ** world


def _is_finite(x: Tensor) -> bool:
    low, high = torch.aminmax(x)
    return bool(low.isfinite() & high.isfinite())
