"""What one collective call hands back, and how its traffic is counted as it is sent.

For P ranks that offer ``p_i = e_i + g_i`` (docs/algorithms.md, error feedback), every
collective returns on rank i

    total     = sum over ranks j of what is applied from p_j    # (d,), identical on every rank
    residual  = this rank's new e_i                               # (d,)
    sent      = indices whose value left this rank's residual     # (n,) int64, for DGC masking

and keeps the invariant ``sum_i residual_i + total == sum_i p_i`` (up to float rounding).
``total``, ``residual`` and ``sent`` are buffers the collective owns and reuses: they hold
this call's result until the next call on the same collective; clone what you keep longer.

:class:`CommStats` is what this rank paid for the call: messages and bytes sent and received,
and seconds split into ``select`` (local top-k and tree merges), ``comm`` (on or waiting for
the wire) and ``apply`` (scatter into the total and the residual). The input-agreement check
(:mod:`sparsgd.comm.base`) is part of the totals and also shown apart: ``check_messages_*``
counts the messages of the handshake all-gather (first call, or after a signature change:
0 in steady state) and ``check_bytes_*`` those plus the status headers that ride in the
payload messages.

Counting rules. Point-to-point messages (the gTop-k tree) are counted byte for byte from the
buffers handed to ``send`` / ``recv``. ``all_reduce`` and ``all_gather`` run inside the
backend, which picks its own wire algorithm, so they are counted by the ring rule of
docs/algorithms.md (cost model), with P ranks and a buffer of m elements of s bytes:

    all_gather (ring):  P - 1 messages of m * s bytes sent, and as many received
    all_reduce (ring):  2 (P - 1) messages of ceil(m / P) * s bytes sent, and as many received

Pure bookkeeping: no ``torch.distributed`` here, so the one-process reference
(:mod:`sparsgd.sim.collectives`) counts its simulated ranks with the same rules.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

__all__ = ["PHASES", "CommStats", "Ledger", "Reduced", "all_reduce_chunk"]

PHASES = ("select", "comm", "apply")


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
    check_messages_sent: int = 0  # included in messages_sent: handshake messages only
    check_bytes_sent: int = 0  # included in bytes_sent: handshake and status headers
    check_messages_recv: int = 0  # included in messages_recv
    check_bytes_recv: int = 0  # included in bytes_recv

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
        """Messages sent for the aggregation itself, the handshake left out."""
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


def all_reduce_chunk(numel: int, world: int) -> int:
    """Elements per ring chunk when ``numel`` elements are split over ``world`` ranks."""
    return -(-numel // world)


class Ledger:
    """Accumulates the :class:`CommStats` of one call on one rank.

    ``device`` decides whether phase timing waits for CUDA work to finish (it must, or the
    seconds land in the wrong phase). ``check_*`` arguments say how much of a message is the
    input-agreement check: a whole handshake message, or the bytes of a status header.
    """

    def __init__(self, device: torch.device | None = None) -> None:
        self.stats = CommStats()
        self._cuda = device is not None and device.type == "cuda"

    def send(self, nbytes: int, check_bytes: int = 0) -> None:
        """One point-to-point message of ``nbytes`` bytes (``check_bytes`` of header) sent."""
        self._count("sent", 1, nbytes, 0, check_bytes)

    def recv(self, nbytes: int, check_bytes: int = 0) -> None:
        """One point-to-point message of ``nbytes`` bytes (``check_bytes`` of header) arrived."""
        self._count("recv", 1, nbytes, 0, check_bytes)

    def all_gather(self, nbytes_per_rank: int, world: int, check: bool = False) -> None:
        """A ring all-gather of ``nbytes_per_rank`` bytes from each of ``world`` ranks."""
        messages, nbytes = world - 1, (world - 1) * nbytes_per_rank
        for way in ("sent", "recv"):
            self._count(way, messages, nbytes, messages if check else 0, nbytes if check else 0)

    def all_reduce(self, numel: int, itemsize: int, world: int, check_numel: int = 0) -> None:
        """A ring all-reduce of ``numel`` elements of ``itemsize`` bytes over ``world`` ranks,
        the last ``check_numel`` of them a status appended to the payload."""
        messages = 2 * (world - 1)
        nbytes = messages * all_reduce_chunk(numel, world) * itemsize
        payload = messages * all_reduce_chunk(numel - check_numel, world) * itemsize
        for way in ("sent", "recv"):
            self._count(way, messages, nbytes, 0, nbytes - payload)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the wall time of the ``with`` body to ``stats.<name>_s``."""
        if name not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}; got {name!r}")
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            field = f"{name}_s"
            setattr(self.stats, field, getattr(self.stats, field) + time.perf_counter() - start)

    def _count(self, way: str, messages: int, nbytes: int, check_msgs: int, check: int) -> None:
        s = self.stats
        setattr(s, f"messages_{way}", getattr(s, f"messages_{way}") + messages)
        setattr(s, f"bytes_{way}", getattr(s, f"bytes_{way}") + nbytes)
        setattr(s, f"check_messages_{way}", getattr(s, f"check_messages_{way}") + check_msgs)
        setattr(s, f"check_bytes_{way}", getattr(s, f"check_bytes_{way}") + check)

    def _sync(self) -> None:
        if self._cuda:
            torch.cuda.synchronize()
