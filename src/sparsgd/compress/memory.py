"""Error-feedback memories: what a worker adds to its gradient before compressing, and keeps.

The Memory protocol (docs/architecture.md) splits one step of docs/algorithms.md section 2 in two:

    p = memory.compensate(g)            # (1) none: p = g ; residual: p = e + g
    ... c = C(p); residual = p - c ...  # the compressor / collective, outside the memory
    memory.update_(residual, sent)      # (2) none: forget ; residual: e <- residual

so that sum(new e) + sent == old e + g: nothing computed is lost.

Buffers: ``ResidualMemory.compensate`` writes ``p`` into a ``(numel,)`` buffer the memory owns
and returns it, so a step allocates nothing of the model's size. The caller may read and change
that ``p`` until its ``update_``; the next ``compensate`` overwrites it, so nobody keeps it
across steps (sync/step.py and the async gradient worker use it within one step only). If the
residual handed to ``update_`` is that same buffer (the caller zeroed the sent entries in
place), ``e`` and the buffer swap roles: no copy at all.

Memories that never step at the same time (the simulator's W workers, one after another) can
share that buffer: after ``memory.share_buffer(shared)`` a residual memory writes ``p`` into
the :class:`SharedBuffer`'s tensor and, when it swaps, leaves its old ``e`` there in
exchange, so W memories hold W residuals and one spare between them, not 2 W vectors; ``p``
is then valid until the next ``compensate`` of any memory sharing it. The numbers do not
change. DGC momentum correction (``dgc``) is in :mod:`sparsgd.compress.momentum`.

Non-finite policy: ``compensate`` raises NonFiniteError for a NaN/Inf gradient before touching
any state, and ``update_`` refuses a non-finite residual (or a non-finite saved state), so
nothing non-finite ever enters a memory.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from sparsgd.compress.checks import (
    check_finite,
    check_indices,
    check_numel,
    check_positive_int,
    check_settings,
    check_state_keys,
)
from sparsgd.compress.momentum import DGCMemory

__all__ = [
    "MEMORIES",
    "Memory",
    "NoMemory",
    "ResidualMemory",
    "SharedBuffer",
    "make_memory",
    "saved_residual",
]


@runtime_checkable
class Memory(Protocol):
    """Error feedback around a compressor, over flat ``(numel,)`` tensors."""

    name: str

    def compensate(self, g: Tensor) -> Tensor:
        """The vector ``p`` to compress for gradient ``g``; state changes only in update_."""
        ...

    def update_(self, residual: Tensor, sent: Tensor) -> None:
        """Keep ``residual = p - C(p)``; ``sent`` are the indices that were sent."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class NoMemory:
    """No error feedback: ``p = g``; what is not sent is dropped."""

    name = "none"

    def __init__(self, numel: int) -> None:
        self.numel = check_positive_int(numel, "numel")

    def compensate(self, g: Tensor) -> Tensor:
        check_numel(g, self.numel, "g")
        return check_finite(g, "gradient")

    def update_(self, residual: Tensor, sent: Tensor) -> None:
        check_numel(residual, self.numel, "residual")
        check_indices(sent, self.numel, "sent")

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_keys(state, set(), "memory 'none'")


class SharedBuffer:
    """One work tensor lent in turn to memories that never step at the same time."""

    def __init__(self) -> None:
        self.tensor: Tensor | None = None

    def get(self, numel: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """The shared tensor as ``(numel,)`` of ``dtype`` on ``device``, (re)made if it is not."""
        t = self.tensor
        if t is None or t.shape != (numel,) or t.dtype != dtype or t.device != device:
            self.tensor = t = torch.empty(numel, dtype=dtype, device=device)
        return t


class ResidualMemory:
    """Residual error feedback: ``p = e + g``, then ``e <- residual`` (e starts at 0)."""

    name = "residual"

    def __init__(self, numel: int, dtype: torch.dtype = torch.float32) -> None:
        self.numel = check_positive_int(numel, "numel")
        self.e = torch.zeros(self.numel, dtype=dtype)  # (numel,) residual e
        self._p: Tensor | None = torch.empty_like(self.e)  # (numel,) p, handed out by compensate
        self._shared: SharedBuffer | None = None  # set: p's buffer is this one's tensor

    def share_buffer(self, shared: SharedBuffer) -> None:
        """Write ``p`` into ``shared``'s tensor from now on (module docstring); drop our own."""
        self._shared, self._p = shared, None

    def _buffer(self) -> Tensor:
        if self._shared is not None:
            return self._shared.get(self.numel, self.e.dtype, self.e.device)
        self._p = self._p.to(self.e.device)
        return self._p

    def compensate(self, g: Tensor) -> Tensor:
        """``p = e + g`` in the memory's buffer: valid until the next compensate."""
        check_numel(g, self.numel, "g")
        check_finite(g, "gradient")  # before any state is read or written
        self.e = self.e.to(g.device)
        buf = self._buffer()
        if torch.result_type(self.e, g) != buf.dtype:
            return self.e + g  # (1) a wider g (e.g. float64): a fresh p of its dtype
        return torch.add(self.e, g.detach(), out=buf)  # (1)

    def update_(self, residual: Tensor, sent: Tensor) -> None:
        check_numel(residual, self.numel, "residual")
        check_indices(sent, self.numel, "sent")
        check_finite(residual, "residual")
        buf = self._buffer()
        if not _same_buffer(residual, buf):
            self.e.copy_(residual.detach())  # (2)
        elif self._shared is not None:
            self.e, self._shared.tensor = buf, self.e  # (2) edited in place: swap, no copy
        else:
            self.e, self._p = buf, self.e  # (2) the caller edited p in place: no copy

    def state_dict(self) -> dict[str, Any]:
        return {"e": saved_residual(self.e.detach().cpu().clone())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_keys(state, {"e"}, "memory 'residual'")
        check_numel(state["e"], self.numel, "state['e']")
        check_finite(state["e"], "state['e']")  # a damaged checkpoint must not seed e
        self.e = state["e"].to(self.e.dtype).clone()
        self._p = None if self._shared is not None else torch.empty_like(self.e)


def saved_residual(e: Tensor) -> Tensor:
    """``e`` (a fresh copy) as a state dict holds it; every entry +0.0 (a fresh memory, or a
    simulated worker's after its flush) gives one zero expanded to e's size instead, which a
    checkpoint stores in one entry and a load gives back as the same zeros (-0.0 is kept: the
    test is on the bytes)."""
    if e.view(torch.uint8).any():
        return e
    return e.new_zeros(1).expand(e.numel())


def _same_buffer(a: Tensor, b: Tensor) -> bool:
    """Whether ``a`` is exactly the whole of ``b`` (same memory, shape and dtype)."""
    return (
        a.data_ptr() == b.data_ptr()
        and a.shape == b.shape
        and a.dtype == b.dtype
        and a.stride() == b.stride()
    )


MEMORIES: dict[str, type] = {
    "none": NoMemory,
    "residual": ResidualMemory,
    "dgc": DGCMemory,
}


def make_memory(name: str, numel: int, **settings: Any) -> Memory:
    """Build memory ``name`` over ``numel`` entries (``dgc`` takes ``momentum``)."""
    if name not in MEMORIES:
        raise ValueError(f"unknown memory {name!r}; valid names: {sorted(MEMORIES)}")
    cls = MEMORIES[name]
    return cls(**check_settings(cls, {"numel": numel, **settings}, f"memory {name!r}"))
