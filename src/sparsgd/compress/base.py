"""The compressor contract: flat tensor in, :class:`SparseMessage` out.

    msg = compressor.compress(x, density)   # x: (d,) float, 0 < density <= 1
    y   = decompress(msg)                   # (d,) with y[msg.indices] == msg.values

Compressors hold only their own settings and random generator; error feedback lives apart in
:mod:`sparsgd.compress.memory` so that the two compose (grace's Compressor / Memory split).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from sparsgd.compress.message import SparseMessage

__all__ = ["Compressor", "decompress"]


@runtime_checkable
class Compressor(Protocol):
    """A selection rule ``C`` of ALGORITHMS.md section 1."""

    name: str

    def compress(self, x: Tensor, density: float) -> SparseMessage:
        """Select entries of the flat tensor ``x``; does not modify ``x``."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def decompress(msg: SparseMessage) -> Tensor:
    """Dense ``(numel,)`` float32 tensor equal to ``msg.values`` at ``msg.indices``, else 0."""
    return msg.to_dense()
