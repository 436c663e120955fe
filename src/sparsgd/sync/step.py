"""One synchronous S-SGD step after the backward pass (Shi et al., ICDCS 2019, Algorithm 1).

On every rank i of P, with the gradients of this rank's mini-batch in ``param.grad``:

    g  = flat(grad)                        # (1) (d,) local gradient, written into a reused
                                           #     buffer: the collective's staging view if it
                                           #     lends one (dense), else the step's own
    g  = g * min(1, clip / ||g||)          # (2) optional local clipping (DGC, section 3.3)
    p  = memory.compensate(g)              # (3) p = e + g (or DGC's accumulated velocity)
    R  = collective.reduce(p, rho, overwrite=True)  # (4) R.total = sum over ranks of what is
                                           #     applied; R.residual is written into p
    memory.update_(R.residual, R.sent)     # (5) e <- R.residual: nothing computed is lost
    grad = R.total / P                     # (6) the averaged sparse gradient, every rank alike
    optimizer.step()                       # (7) SGD: momentum and weight decay AFTER aggregation

Non-finite gradients: a rank whose g holds NaN/Inf does not touch its memory (compensate
refuses g before it reads or writes any state, so the step needs no test of its own unless it
clips); it hands g to the collective instead, whose input check (:mod:`sparsgd.comm.base`)
raises NonFiniteError on every rank together. Then every rank skips the step, leaves
parameters, optimizer and memory as they were, and counts it. Nothing non-finite is folded
into a residual.

p is this step's own (the memory's buffer, which its caller may change until ``update_``, or
the flat gradient itself with memory ``none``, which returns g), so it is handed over to the
collective: a sparse collective turns it into the residual in place, and a memory given back
its own buffer swaps it in, with no copy of d entries on either side (comm/base.py,
compress/memory.py). The flat gradient lives in one buffer reused by every step: nothing keeps
g or p past ``update_`` (the memories copy what they keep into their own state). A collective
with a ``staging(numel, dtype, device)`` method lends that buffer itself (dense: the first d
entries of its all-reduce buffer, comm/dense.py), so with memory ``none`` p is reduced where
(1) wrote it, with no copy; with another memory, p is the memory's buffer and the collective
copies it as before. (6) writes R.total / P straight into the gradients. The numbers do not
change.

Clipping sits before the memory (DGC's local gradient clipping), not after it: clipping p would
scale the residual and lose the clipped part of it, breaking the error-feedback invariant.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sparsgd.comm import Collective
from sparsgd.compress import Memory, NonFiniteError
from sparsgd.worker.flat_model import flat_grad, write_grad_

__all__ = ["StepStats", "SyncSGD"]


@dataclass
class StepStats:
    """What one step cost this rank, and what it did."""

    skipped: bool = False
    density: float = 0.0  # asked-for density rho of this step
    achieved_density: float = 0.0  # entries this rank selected / d
    applied_density: float = 0.0  # nonzero entries of the applied total / d
    bytes_sent: int = 0  # everything this rank sent (input check included)
    bytes_recv: int = 0
    check_bytes_sent: int = 0  # the collective's input-agreement check alone
    compress_s: float = 0.0  # memory + local selection + tree merges
    comm_s: float = 0.0  # on or waiting for the wire
    apply_s: float = 0.0  # scatter, residual, gradient write-back, optimizer step
    residual_norm: float = 0.0  # ||e|| after the step


class SyncSGD:
    """The step above, for one rank: settings, then the statistics it keeps.

    ``params`` are the trainable parameters in a fixed order (the flat layout); ``optimizer``
    holds them. ``world_size`` is P. The memory and collective are built by the caller.
    """

    def __init__(
        self,
        params: list[nn.Parameter],
        optimizer: torch.optim.Optimizer,
        collective: Collective,
        memory: Memory,
        world_size: int,
        clip: float | None = None,
    ) -> None:
        self.params = params
        self.optimizer = optimizer
        self.collective = collective
        self.memory = memory
        self.world_size = world_size
        self.clip = clip
        self.numel = sum(p.numel() for p in params)
        self.skipped_nonfinite = 0  # statistics
        self._flat = torch.empty(0)  # (d,) float32 flat gradient, reused (unless staged)

    def step(self, density: float) -> StepStats:
        """Aggregate the gradients in ``param.grad`` and update the parameters (or skip)."""
        stats = StepStats(density=density)
        t0 = time.perf_counter()
        g = flat_grad(self.params, out=self._flat_buffer())  # (1) (d,)
        if self.clip is not None and _is_finite(g):
            g = _clip(g, self.clip)  # (2)
        try:
            p = self.memory.compensate(g)  # (3)
        except NonFiniteError:
            p = g  # a NaN g never reaches the memory: it raises before touching its state
        stats.compress_s += time.perf_counter() - t0
        try:
            reduced = self.collective.reduce(p, density, overwrite=True)  # (4) p handed over
        except NonFiniteError:
            self.skipped_nonfinite += 1
            self.optimizer.zero_grad(set_to_none=True)
            stats.skipped = True
            return stats
        t1 = time.perf_counter()
        self.memory.update_(reduced.residual, reduced.sent)  # (5)
        t2 = time.perf_counter()
        write_grad_(self.params, reduced.total, divisor=self.world_size)  # (6)
        self.optimizer.step()  # (7)
        t3 = time.perf_counter()
        _fill(stats, reduced, self.numel, t2 - t1, t3 - t2)
        return stats

    def _flat_buffer(self) -> Tensor:
        """Where (1) writes g: the collective's staging view if it has one, else our own."""
        device = self.params[0].device
        staging = getattr(self.collective, "staging", None)
        if callable(staging):
            return staging(self.numel, torch.float32, device)
        if self._flat.numel() != self.numel or self._flat.device != device:
            self._flat = torch.empty(self.numel, dtype=torch.float32, device=device)
        return self._flat


def _is_finite(g: Tensor) -> bool:
    """Whether every entry of ``g`` is finite. A NaN or Inf entry makes the sum NaN or Inf, so
    a finite sum proves every entry finite in one pass with nothing allocated; only a sum that
    is not finite (a bad entry, or finite entries that overflow) pays for the exact test."""
    return math.isfinite(float(g.sum())) or bool(torch.isfinite(g).all())


def _clip(g: Tensor, max_norm: float) -> Tensor:
    """``g`` scaled in place to norm at most ``max_norm`` (``g`` is the step's own buffer)."""
    norm = float(torch.linalg.vector_norm(g))
    return g.mul_(max_norm / norm) if norm > max_norm else g


def _fill(stats: StepStats, reduced, numel: int, memory_s: float, apply_s: float) -> None:
    c = reduced.stats
    stats.achieved_density = reduced.sent.numel() / numel
    stats.applied_density = int(torch.count_nonzero(reduced.total)) / numel
    stats.bytes_sent = c.bytes_sent
    stats.bytes_recv = c.bytes_recv
    stats.check_bytes_sent = c.check_bytes_sent
    stats.compress_s += c.select_s + memory_s
    stats.comm_s = c.comm_s
    stats.apply_s = c.apply_s + apply_s
    stats.residual_norm = float(torch.linalg.vector_norm(reduced.residual, dtype=torch.float64))
