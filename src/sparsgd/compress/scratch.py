"""Reusable work buffers for the selection hot path, owned by whoever selects repeatedly.

A fresh 40 MB allocation costs about as much on CPU as a whole read pass of 1e7 floats, so a
selection that runs every step keeps its work buffers between calls:

    buf = scratch.take("hi", n, dtype, device)   # (n,) view of a buffer kept under "hi"
                                                 # reallocated only when it must grow

The views are valid until the next ``take`` of the same name; their contents are garbage on
return. ``take_array`` does the same for CPU numpy arrays (the small-x path of ``topk`` runs
in numpy; a torch view plus ``.numpy()`` costs more than the work at a few thousand entries),
and ``address`` gives only a CPU buffer's address, for the compiled loops.
A :class:`Scratch` is not shared between threads. Who owns one: the ``topk`` compressor (one
per compressor) and any caller of :func:`~sparsgd.compress.topk.topk_indices` that passes its
own; without one, each call builds a throw-away Scratch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["Scratch"]


class Scratch:
    """Named, growing, reused 1-D buffers (see the module docstring)."""

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}
        self._arrays: dict[str, np.ndarray] = {}

    def take(self, name: str, n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """A ``(n,)`` view of the buffer ``name`` (uninitialised); earlier views of it lapse."""
        if n < 0:
            raise ValueError(f"n must be >= 0; got {n}")
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < n or buf.dtype != dtype or buf.device != device:
            buf = torch.empty(n, dtype=dtype, device=device)
            self._buffers[name] = buf
        return buf[:n]

    def take_array(self, name: str, n: int, dtype: np.dtype) -> np.ndarray:
        """A ``(n,)`` view of the CPU numpy buffer ``name``, like :meth:`take`."""
        if n < 0:
            raise ValueError(f"n must be >= 0; got {n}")
        buf = self._arrays.get(name)
        if buf is None or buf.size < n or buf.dtype != dtype:
            buf = np.empty(n, dtype=dtype)
            self._arrays[name] = buf
        return buf[:n]

    def address(self, name: str, n: int, dtype: torch.dtype) -> int:
        """The address of a CPU buffer ``name`` of at least ``n`` entries (for compiled code,
        which needs no view: cheaper than :meth:`take` on calls of a few microseconds)."""
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < n or buf.dtype != dtype or not buf.is_cpu:
            buf = self.take(name, n, dtype, torch.device("cpu"))
        return buf.data_ptr()

    def capacity(self, name: str) -> int:
        """Entries the tensor buffer ``name`` holds now (0 if there is none yet)."""
        buf = self._buffers.get(name)
        return 0 if buf is None else buf.numel()

    def nbytes(self) -> int:
        """Bytes held by all buffers (for tests and memory reports)."""
        tensors = sum(b.numel() * b.element_size() for b in self._buffers.values())
        return tensors + sum(a.nbytes for a in self._arrays.values())
