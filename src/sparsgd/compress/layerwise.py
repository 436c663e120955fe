"""Layer-wise selection: the inner compressor applied to each layer's segment of the flat x.

With layer sizes d_1, ..., d_L (sum d) and offsets o_l = d_1 + ... + d_{l-1}:

    msg_l = inner.compress(x[o_l : o_l + d_l], density)     # (1) same density in every layer
    C(x)  = concat over l of (o_l + msg_l.indices, msg_l.values)   # (2) indices stay ascending

Each layer keeps k_l = max(1, floor(density d_l)), so the total may differ a little from the
whole-model k = max(1, floor(density d)); ``msg.density`` reports what was achieved. A
whole-model compressor is the same inner compressor used on x directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from sparsgd.compress.base import Compressor
from sparsgd.compress.checks import check_density, check_flat, check_state_keys
from sparsgd.compress.message import SparseMessage, index_dtype

__all__ = ["LayerwiseCompressor", "layer_sizes"]


def layer_sizes(tensors: Iterable[Tensor]) -> list[int]:
    """Sizes of the layers in flattening order, e.g. ``layer_sizes(model.parameters())``."""
    return [t.numel() for t in tensors]


class LayerwiseCompressor:
    """Applies ``inner`` per segment of sizes ``sizes``; state is the inner compressor's."""

    def __init__(self, inner: Compressor, sizes: Sequence[int]) -> None:
        if not isinstance(inner, Compressor):
            raise TypeError(f"inner must be a Compressor; got {type(inner).__name__}")
        sizes = list(sizes)
        if not sizes:
            raise ValueError("sizes must list at least one layer size; got []")
        bad = [s for s in sizes if isinstance(s, bool) or not isinstance(s, int) or s < 1]
        if bad:
            raise ValueError(f"sizes must be positive integers; got {bad[:5]} among them")
        self.inner = inner
        self.sizes = sizes
        self.numel = sum(sizes)
        self.name = f"layerwise_{inner.name}"

    def compress(self, x: Tensor, density: float) -> SparseMessage:
        check_flat(x)
        check_density(density)
        if x.numel() != self.numel:
            raise ValueError(
                f"x must have sum(sizes) = {self.numel} entries for layer-wise selection; "
                f"got {x.numel()}"
            )
        all_indices: list[Tensor] = []
        all_values: list[Tensor] = []
        offset = 0
        for size in self.sizes:
            msg = self.inner.compress(x[offset : offset + size], density)  # (1)
            all_indices.append(msg.indices.long() + offset)  # (2)
            all_values.append(msg.values)
            offset += size
        indices = torch.cat(all_indices).to(index_dtype(self.numel))
        return SparseMessage(indices, torch.cat(all_values), self.numel)

    def state_dict(self) -> dict[str, Any]:
        return {"inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_keys(state, {"inner"}, f"compressor {self.name!r}")
        self.inner.load_state_dict(state["inner"])

    def __repr__(self) -> str:
        return f"LayerwiseCompressor({self.inner!r}, sizes=<{len(self.sizes)} layers>)"
