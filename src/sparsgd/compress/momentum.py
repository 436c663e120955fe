"""DGC momentum correction: error feedback on the velocity instead of the gradient.

Deep Gradient Compression (Lin et al., ICLR 2018, section 3.2) accumulates momentum locally so
that sparsification does not throw momentum away (docs/algorithms.md section 2):

    u = m u + g            # (1) momentum (velocity) with factor m
    v = v + u              # (2) accumulated velocity
    p = v                  #     what is compressed: C(p) is sent
    v <- residual          # (3) residual = p - C(p): v is zero where entries were sent
    u[sent] = 0            # (4) momentum factor masking: stale momentum is not sent twice

``compensate`` computes (1)-(2) without committing them; ``update_`` commits (3)-(4), so a
step refused before ``update_`` (a NaN gradient, a failed collective) leaves u and v as they
were. Conservation: new v + sent == old v + (m u + g), the DGC form of the section 2 invariant.
When it is used, the optimizer's own momentum should be off (the velocity already holds it).

Buffers: u' and p are written into buffers the memory owns (u' then swaps with u in
``update_``), so a step allocates nothing of the model's size; the p that ``compensate``
returns is the caller's until the next ``compensate``, and a residual made from it in place
is swapped into v without a copy (as :mod:`sparsgd.compress.memory` does for ``residual``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from sparsgd.compress.checks import (
    check_finite,
    check_indices,
    check_numel,
    check_positive_int,
    check_state_keys,
)

__all__ = ["DGCMemory"]


class DGCMemory:
    """Momentum-corrected error feedback with factor masking (memory name ``dgc``)."""

    name = "dgc"

    def __init__(self, numel: int, momentum: float = 0.9, dtype: torch.dtype = torch.float32):
        self.numel = check_positive_int(numel, "numel")
        if not isinstance(momentum, (int, float)) or not (
            math.isfinite(momentum) and 0 <= momentum < 1
        ):
            raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")
        self.momentum = float(momentum)
        self.u = torch.zeros(self.numel, dtype=dtype)  # (numel,) velocity u
        self.v = torch.zeros(self.numel, dtype=dtype)  # (numel,) accumulated velocity v
        self._pending_u: Tensor | None = None  # u of (1), committed by update_
        self._u_next = torch.empty_like(self.u)  # (numel,) buffer of u', swapped with u
        self._p = torch.empty_like(self.v)  # (numel,) buffer of p, handed out by compensate

    def compensate(self, g: Tensor) -> Tensor:
        """``p = v + (m u + g)`` in a buffer the memory owns: valid until the next compensate."""
        check_numel(g, self.numel, "g")
        check_finite(g, "gradient")  # before any state is read or written
        self.u, self.v = self.u.to(g.device), self.v.to(g.device)
        self._u_next, self._p = self._u_next.to(g.device), self._p.to(g.device)
        if torch.result_type(self.u, g) != self.u.dtype:  # a wider g: fresh tensors of its dtype
            self._pending_u = self.momentum * self.u + g  # (1)
            return self.v + self._pending_u  # (2) p = v
        u_new = torch.mul(self.u, self.momentum, out=self._u_next).add_(g.detach())  # (1)
        self._pending_u = u_new
        return torch.add(self.v, u_new, out=self._p)  # (2) p = v

    def update_(self, residual: Tensor, sent: Tensor) -> None:
        if self._pending_u is None:
            raise RuntimeError("update_ called without a compensate() before it in this step")
        check_numel(residual, self.numel, "residual")
        check_indices(sent, self.numel, "sent")
        check_finite(residual, "residual")
        if _is_whole(residual, self._p):
            self.v, self._p = self._p, self.v  # (3) p turned into the residual in place: swap
        else:
            self.v.copy_(residual.detach())  # (3)
        u = self._pending_u.to(self.u.dtype)
        u[sent.to(u.device).long()] = 0  # (4)
        if u.data_ptr() == self._u_next.data_ptr():
            self._u_next = self.u  # the old u becomes next step's buffer
        self.u, self._pending_u = u, None

    def state_dict(self) -> dict[str, Any]:
        return {"u": self.u.detach().cpu().clone(), "v": self.v.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_keys(state, {"u", "v"}, "memory 'dgc'")
        check_numel(state["u"], self.numel, "state['u']")
        check_numel(state["v"], self.numel, "state['v']")
        check_finite(state["u"], "state['u']")  # a damaged checkpoint must not seed u or v
        check_finite(state["v"], "state['v']")
        self.u = state["u"].to(self.u.dtype).clone()
        self.v = state["v"].to(self.v.dtype).clone()
        self._pending_u = None
        self._u_next, self._p = torch.empty_like(self.u), torch.empty_like(self.v)

    def __repr__(self) -> str:
        return f"DGCMemory(numel={self.numel}, momentum={self.momentum})"


def _is_whole(a: Tensor, b: Tensor) -> bool:
    """Whether ``a`` is exactly the whole of ``b`` (same memory, shape, dtype and strides)."""
    same_memory = a.data_ptr() == b.data_ptr() and a.dtype == b.dtype
    return same_memory and a.shape == b.shape and a.stride() == b.stride()
