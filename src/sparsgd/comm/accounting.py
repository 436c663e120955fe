"""Counting one rank's traffic as it is sent, and its time per phase.

Point-to-point messages (the gTop-k tree) are counted byte for byte from the buffers handed to
``send`` / ``recv``. Collectives that run inside the backend (``all_reduce``, ``all_gather``)
choose their own wire algorithm (gloo and NCCL differ, and change with the message size), so
they are counted from the size of the buffer this rank hands in, through the ring algorithm of
docs/algorithms.md section 3. With P ranks and a buffer of m elements of s bytes:

    all_gather (ring):  P - 1 messages of m * s bytes sent, and as many received
    all_reduce (ring):  2 (P - 1) messages of ceil(m / P) * s bytes sent, and as many received
                        (reduce-scatter then all-gather of P chunks: 2 (P - 1) / P * n bytes)

Pure bookkeeping: no ``torch.distributed`` here, so the one-process reference
(:mod:`sparsgd.sim.collectives`) counts its simulated ranks with the same rules.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from sparsgd.comm.stats import CommStats

__all__ = ["CHECK_HEADER_LEN", "PHASES", "Ledger", "all_reduce_chunk"]

# int64 fields of the input-agreement header (comm/agree.py): status, numel, k, dtype, finite.
CHECK_HEADER_LEN = 5
PHASES = ("select", "comm", "apply")


def all_reduce_chunk(numel: int, world: int) -> int:
    """Elements per ring chunk when ``numel`` elements are split over ``world`` ranks."""
    return -(-numel // world)


class Ledger:
    """Accumulates the :class:`CommStats` of one call on one rank.

    ``device`` decides whether phase timing waits for CUDA work to finish (it must, or the
    seconds land in the wrong phase).
    """

    def __init__(self, device: torch.device | None = None) -> None:
        self.stats = CommStats()
        self._cuda = device is not None and device.type == "cuda"

    def send(self, nbytes: int, check: bool = False) -> None:
        """One point-to-point message of ``nbytes`` bytes left this rank."""
        self._sent(1, nbytes, check)

    def recv(self, nbytes: int) -> None:
        """One point-to-point message of ``nbytes`` bytes arrived at this rank."""
        self.stats.messages_recv += 1
        self.stats.bytes_recv += nbytes

    def all_gather(self, nbytes_per_rank: int, world: int, check: bool = False) -> None:
        """A ring all-gather of ``nbytes_per_rank`` bytes from each of ``world`` ranks."""
        self._sent(world - 1, (world - 1) * nbytes_per_rank, check)
        self.stats.messages_recv += world - 1
        self.stats.bytes_recv += (world - 1) * nbytes_per_rank

    def all_reduce(self, numel: int, itemsize: int, world: int) -> None:
        """A ring all-reduce of ``numel`` elements of ``itemsize`` bytes over ``world`` ranks."""
        messages = 2 * (world - 1)
        nbytes = messages * all_reduce_chunk(numel, world) * itemsize
        self._sent(messages, nbytes, False)
        self.stats.messages_recv += messages
        self.stats.bytes_recv += nbytes

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

    def _sent(self, messages: int, nbytes: int, check: bool) -> None:
        self.stats.messages_sent += messages
        self.stats.bytes_sent += nbytes
        if check:
            self.stats.check_messages_sent += messages
            self.stats.check_bytes_sent += nbytes

    def _sync(self) -> None:
        if self._cuda:
            torch.cuda.synchronize()
