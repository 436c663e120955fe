"""Dense S-SGD: the all-reduce of the whole flat tensor, the baseline of every comparison.

On rank i of P, with a buffer B of d + 1 elements owned by the collective:

    # (1) B[:d] = p_i;  B[d] = status_i          # 0, or 1 if p_i's size/dtype/density differ
    # (2) all_reduce(B)                           # B[:d] = S = sum_i p_i;  B[d] = flagged ranks
    # (3) B[d] > 0: every rank runs the input check (comm/base.py) and raises or retries
    # (4) S holds NaN/Inf (min or max of S not finite): every rank runs the handshake, which
    #     raises NonFiniteError naming the ranks whose p_i is not finite, or, if every p_i
    #     was finite, every rank raises that their sum overflows
    # (5) total = S;  residual = 0;  sent = 0 .. d-1

Finiteness is tested once, after the exchange, on S rather than on each p_i before it: a NaN
or Inf in any p_i reaches S (Inf + -Inf is NaN), and so does an overflow of finite p_i, which
a test before the exchange would let through. The test is ``aminmax`` (NaN and Inf propagate
to the min or the max; one read pass, nothing of size d allocated, measured faster than
``sum`` on one thread), the same cost as the test of p_i it replaces. S is the same on every
rank, so every rank takes the same branch and none is left waiting.

``total``, ``residual`` and ``sent`` are views of buffers reused across calls of the same
size (see :mod:`sparsgd.comm.stats`): nothing of size d is allocated per call.

Cost (ring, docs/algorithms.md cost model): 2 (P - 1) messages and 2 (P - 1) ceil((d+1)/P)
* s bytes sent per rank, the appended status included. The backend picks its own algorithm;
the bytes are counted by that ring rule.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from sparsgd.comm.base import InputCheck, check_compressor
from sparsgd.comm.stats import Ledger, Reduced
from sparsgd.comm.wire import open_link
from sparsgd.compress.base import Compressor
from sparsgd.compress.checks import NonFiniteError

__all__ = ["DenseAllreduce"]


class DenseAllreduce:
    """``dense``: sum of every rank's ``p`` by one all_reduce, status element appended."""

    name = "dense"

    def __init__(
        self, group: dist.ProcessGroup | None = None, compressor: Compressor | None = None
    ) -> None:
        check_compressor(self.name, compressor, ("dense",))
        self._link = open_link(group, self.name)
        self._check = InputCheck(self.name, self._link)  # finiteness by (4), after the sum
        self._buffer = torch.empty(0)  # (d + 1,) B
        self._zeros = torch.empty(0)  # (d,) the residual, always 0
        self._every_index = torch.empty(0, dtype=torch.int64)  # (d,) sent = 0 .. d-1

    def reduce(self, p: Tensor, density: float, *, overwrite: bool = False) -> Reduced:
        """``overwrite`` changes nothing here: the residual is 0 and B needs d + 1 entries."""
        return self._check.run(p, density, self._attempt)

    def _attempt(self, p: Tensor, density: float, status: int, ledger: Ledger) -> Reduced | None:
        numel, dtype = self._check.agreed.numel, self._check.agreed.dtype
        with ledger.phase("apply"):
            buffer = self._buffers(numel, dtype, p.device)
            if status == 0:
                buffer[:numel].copy_(p.detach())  # (1)
            buffer[numel] = status
        self._link.all_reduce_(buffer, ledger, check_numel=1)  # (2)
        if float(buffer[numel]) > 0:  # (3)
            return None
        total = buffer[:numel]
        with ledger.phase("select"):
            low, high = torch.aminmax(total)
            finite = bool(low.isfinite() & high.isfinite())
        if not finite:  # (4)
            self._check.handshake(p, density, ledger)  # raises if some p_i is not finite
            raise NonFiniteError(
                f"{self.name}: every rank's p is finite but their sum overflows {dtype} "
                f"(NaN or Inf in the all-reduced total)"
            )
        return Reduced(total, self._zeros, self._every_index, ledger.stats)  # (5)

    def _buffers(self, numel: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """B, made again only when the size, dtype or device changes."""
        b = self._buffer
        if b.numel() != numel + 1 or b.dtype != dtype or b.device != device:
            self._buffer = torch.zeros(numel + 1, dtype=dtype, device=device)
            self._zeros = torch.zeros(numel, dtype=dtype, device=device)
            self._every_index = torch.arange(numel, dtype=torch.int64, device=device)
        return self._buffer
