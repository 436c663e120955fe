"""What one collective call hands back: the aggregate, this rank's residual, and its traffic.

For P ranks that offer ``p_i = e_i + g_i`` (docs/algorithms.md section 2), every collective returns
on rank i

    total     = sum over ranks j of what is applied from p_j    # (d,), identical on every rank
    residual  = this rank's new e_i                               # (d,)
    sent      = indices whose value left this rank's residual     # (n,) int64, for DGC masking

and keeps the invariant ``sum_i residual_i + total == sum_i p_i`` (up to float rounding).

:class:`CommStats` is what this rank paid for the call: messages and bytes it sent and
received, and seconds split into ``select`` (local top-k and tree merges), ``comm`` (time on
or waiting for the wire) and ``apply`` (scatter into the dense total and the residual). The
input-agreement check that every call starts with is part of the totals and also shown apart
(``check_messages_sent``, ``check_bytes_sent``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import Tensor

__all__ = ["CommStats", "Reduced"]


@dataclass
class CommStats:
    """Traffic and time of one collective call, seen from one rank."""

    messages_sent: int = 0
    bytes_sent: int = 0
    messages_recv: int = 0
    bytes_recv: int = 0
    select_s: float = 0.0
    comm_s: float = 0.0
    apply_s: float = 0.0
    check_messages_sent: int = 0  # included in messages_sent
    check_bytes_sent: int = 0  # included in bytes_sent

    @property
    def total_s(self) -> float:
        """``select_s + comm_s + apply_s``."""
        return self.select_s + self.comm_s + self.apply_s

    @property
    def payload_bytes_sent(self) -> int:
        """Bytes sent for the aggregation itself, the input-agreement check left out."""
        return self.bytes_sent - self.check_bytes_sent

    @property
    def payload_messages_sent(self) -> int:
        """Messages sent for the aggregation itself, the input-agreement check left out."""
        return self.messages_sent - self.check_messages_sent

    def as_dict(self) -> dict[str, float]:
        """Plain dict (for logs and JSON), with ``total_s`` added."""
        out: dict[str, float] = asdict(self)
        out["total_s"] = self.total_s
        return out


@dataclass(frozen=True)
class Reduced:
    """Result of ``Collective.reduce(p, density)`` on one rank (see the module docstring)."""

    total: Tensor  # (d,) dense SUM over ranks; the training loop divides by P
    residual: Tensor  # (d,) this rank's new e_i
    sent: Tensor  # (n,) int64 indices that left this rank's residual
    stats: CommStats
