"""Residuals kept in a file instead of memory, for memories that step one at a time.

    store = ResidualFile(directory, slots=W, numel=d)        # one unlinked file of W x d zeros
    memory = SpilledResidualMemory(store, slot=w, shared=buf)  # memory 'residual', e_w in it

The simulator's W workers step one after another and each reads only its own residual, so
no e has to stay in memory between its worker's steps. Around each step (docs/algorithms.md,
section 2):

    p = read(e_w) + g            # (1) into the shared buffer: one read of d entries
    ... c = C(p); residual = p - c ...
    write(e_w <- residual)       # (2) one write of d entries

The numbers are :class:`~sparsgd.compress.memory.ResidualMemory`'s, bit for bit: the same
float32 sums e + g, and e stored as the same bits. What a worker keeps is then d entries of
the file, on disk or in the kernel's page cache, not in the process's memory. The file is
made unlinked (``tempfile.TemporaryFile``), so it goes when the process ends, however it
ends. Checkpoints hold each e as ResidualMemory's do (``{"e": tensor}``): a run saved with
the file resumes in memory, and the other way round. Same non-finite policy: a NaN/Inf
gradient, residual or saved e raises NonFiniteError before anything is written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
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
from sparsgd.compress.memory import SharedBuffer, saved_residual

__all__ = ["ResidualFile", "SpilledResidualMemory", "check_residual_dir"]

CPU = torch.device("cpu")
MAX_IO_CALLS = 1 << 16  # partial reads/writes of one slot before giving up (a regular file
# returns whole slots; this bounds the loop should a file system not)


def check_residual_dir(directory: str | Path, name: str = "residual_dir") -> Path:
    """``directory`` as a Path if it is a directory this process can write; else ValueError."""
    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"{name} must be an existing directory; got {str(directory)!r}")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{name} must be writable by this process; got {str(directory)!r}")
    return path


class ResidualFile:
    """``slots`` vectors of ``numel`` float32 entries in one unlinked file, all zero at first."""

    dtype = torch.float32

    def __init__(self, directory: str | Path, slots: int, numel: int) -> None:
        self.slots = check_positive_int(slots, "slots")
        self.numel = check_positive_int(numel, "numel")
        self.nbytes = self.numel * self.dtype.itemsize  # one slot
        self.directory = check_residual_dir(directory)
        self._file = tempfile.TemporaryFile(dir=self.directory, prefix="sparsgd-e-")  # noqa: SIM115
        self._file.truncate(self.slots * self.nbytes)  # a hole: reads as zeros, takes no disk

    def _slot(self, slot: int, t: Tensor) -> tuple[memoryview, int]:
        if not 0 <= slot < self.slots:
            raise IndexError(f"slot must be in [0, {self.slots}); got {slot}")
        if t.dtype != self.dtype or t.device.type != "cpu" or not t.is_contiguous():
            raise ValueError(
                f"slot I/O needs a contiguous float32 CPU tensor; got {t.dtype} on {t.device}"
            )
        check_numel(t, self.numel, "t")
        return memoryview(t.detach().numpy()).cast("B"), slot * self.nbytes

    def read_into(self, slot: int, out: Tensor) -> Tensor:
        """Slot ``slot`` into ``out`` (float32, contiguous, CPU, numel entries); returns out."""
        view, offset = self._slot(slot, out)
        self._transfer(os.preadv, view, offset, "read")
        return out

    def write(self, slot: int, t: Tensor) -> None:
        """``t`` (float32, contiguous, CPU, numel entries) into slot ``slot``."""
        view, offset = self._slot(slot, t)
        self._transfer(os.pwritev, view, offset, "write")

    def _transfer(self, call: Any, view: memoryview, offset: int, what: str) -> None:
        done = 0
        for _ in range(MAX_IO_CALLS):
            if done == len(view):
                return
            try:
                n = call(self._file.fileno(), [view[done:]], offset + done)
            except OSError as err:  # a full disk, most likely: say which folder
                raise OSError(
                    err.errno,
                    f"the residual file in {self.directory}: {what} failed "
                    f"({err.strerror}); free space there or choose another --residual-dir",
                ) from err
            if n <= 0:
                break
            done += n
        raise OSError(
            f"the residual file in {self.directory}: {what} of {len(view)} bytes at {offset} "
            f"stopped at {done}"
        )

    def close(self) -> None:
        self._file.close()


class SpilledResidualMemory:
    """Memory ``residual`` whose e lives in slot ``slot`` of a :class:`ResidualFile`.

    ``p`` is written into ``shared``'s tensor, valid until the next compensate of any memory
    sharing it (as with ``ResidualMemory.share_buffer``).
    """

    name = "residual"

    def __init__(self, store: ResidualFile, slot: int, shared: SharedBuffer) -> None:
        self.store, self.slot, self.shared = store, slot, shared
        self.numel = store.numel

    @property
    def e(self) -> Tensor:
        """A fresh copy of the residual, read from the file."""
        return self.store.read_into(self.slot, torch.empty(self.numel, dtype=self.store.dtype))

    def compensate(self, g: Tensor) -> Tensor:
        """``p = e + g`` in the shared buffer: valid until the next compensate."""
        check_numel(g, self.numel, "g")
        check_finite(g, "gradient")  # before any state is read or written
        buf = self.shared.get(self.numel, self.store.dtype, CPU)
        self.store.read_into(self.slot, buf)  # (1) e
        if torch.result_type(buf, g) != buf.dtype:
            return buf + g.detach()  # (1) a wider g (e.g. float64): a fresh p of its dtype
        return buf.add_(g.detach())  # (1) e + g, the sum ResidualMemory computes

    def update_(self, residual: Tensor, sent: Tensor) -> None:
        check_numel(residual, self.numel, "residual")
        check_indices(sent, self.numel, "sent")
        check_finite(residual, "residual")
        self.store.write(self.slot, self._slot_form(residual))  # (2)

    def state_dict(self) -> dict[str, Any]:
        return {"e": saved_residual(self.e)}  # a flushed worker's: one zero, not d

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_keys(state, {"e"}, "memory 'residual'")
        check_numel(state["e"], self.numel, "state['e']")
        check_finite(state["e"], "state['e']")  # a damaged checkpoint must not seed e
        self.store.write(self.slot, self._slot_form(state["e"]))

    def _slot_form(self, e: Tensor) -> Tensor:
        """``e`` as the file stores it: float32, contiguous, CPU (itself when it already is)."""
        return e.detach().cpu().to(self.store.dtype).contiguous()
