"""The compressor contract: flat tensor in, :class:`SparseMessage` out.

    msg = compressor.compress(x, density)   # x: (d,) float, 0 < density <= 1
    y   = decompress(msg)                   # (d,) with y[msg.indices] == msg.values
    r   = residual_after(x, msg)            # x - y: what error feedback keeps

Compressors hold only their own settings and random generator; error feedback lives apart in
:mod:`sparsgd.compress.memory` so that the two compose (grace's Compressor / Memory split).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from sparsgd.compress.message import SparseMessage

__all__ = ["Compressor", "decompress", "residual_after"]


@runtime_checkable
class Compressor(Protocol):
    """A selection rule ``C`` of docs/algorithms.md section 1."""

    name: str

    def compress(self, x: Tensor, density: float) -> SparseMessage:
        """Select entries of the flat tensor ``x``; does not modify ``x``."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def decompress(msg: SparseMessage) -> Tensor:
    """Dense ``(numel,)`` float32 tensor equal to ``msg.values`` at ``msg.indices``, else 0."""
    return msg.to_dense()


def residual_after(p: Tensor, msg: SparseMessage) -> Tensor:
    """``p - decompress(msg)`` in the dtype of ``p``; a new tensor, ``p`` is not modified.

    Exactly zero at the sent positions when the values are ``p`` itself in float32 (topk,
    sampled, threshold, unscaled randomk); otherwise (float16 values, scaled randomk) the
    rounding or scaling difference stays in the residual, so ``residual + sent == p`` holds.
    """
    if p.dim() != 1 or p.numel() != msg.numel:
        raise ValueError(
            f"p must be flat with numel={msg.numel} to match the message; got shape "
            f"{tuple(p.shape)}"
        )
    residual = p.detach().clone()
    residual[msg.indices.long()] -= msg.values.to(p.dtype)
    return residual
