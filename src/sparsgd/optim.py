"""Sparsified gradient aggregation around any optimizer, for one's own training loop.

    opt = sparsgd.SparseAllreduce(torch.optim.SGD(model.parameters(), lr=0.1), density=0.01)
    loss.backward(); opt.step(); opt.zero_grad()

On every rank of an initialised ``torch.distributed`` group, ``step`` is the S-SGD step of
:class:`sparsgd.sync.step.SyncSGD` (docs/algorithms.md, sections 2 and 4):

    p = e + g;  R = collective.reduce(p, rho);  e = R.residual;  grad = R.total / P;  step

with d inferred from the optimizer's parameters, P from the group, and the collective taken
from the registry of :mod:`sparsgd.comm` (``gtopk`` by default). Without an initialised group
there is nothing to aggregate: ``step`` is the wrapped optimizer's step, unchanged, and the
memory stays empty, so a script runs the same on one process.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from sparsgd.comm import make_collective
from sparsgd.compress import make_memory
from sparsgd.compress.checks import check_density
from sparsgd.sync.step import StepStats, SyncSGD

__all__ = ["SparseAllreduce"]


class SparseAllreduce:
    """Wraps ``optimizer``: its ``step`` first aggregates ``param.grad`` over the ranks.

    ``method``: a collective of :data:`sparsgd.comm.COLLECTIVES` (``dense``,
    ``topk_allgather``, ``gtopk``, ``gtopk_exact``); ``memory``: ``residual`` (error feedback)
    or ``none``; ``clip``: local gradient clipping before the memory; ``group``: the process
    group (the default group when ``None``).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        density: float,
        *,
        method: str = "gtopk",
        memory: str = "residual",
        clip: float | None = None,
        group: dist.ProcessGroup | None = None,
    ) -> None:
        check_density(density)
        self.optimizer = optimizer
        self.density = density
        params: list[nn.Parameter] = [
            p for g in optimizer.param_groups for p in g["params"] if p.requires_grad
        ]
        if not params:
            raise ValueError("optimizer must hold at least one parameter that requires grad")
        self.distributed = dist.is_available() and dist.is_initialized()
        self.world_size = dist.get_world_size(group) if self.distributed else 1
        self._sync: SyncSGD | None = None
        if self.distributed:
            numel = sum(p.numel() for p in params)  # d
            self._sync = SyncSGD(
                params,
                optimizer,
                make_collective(method, group=group),
                make_memory(memory, numel),
                self.world_size,
                clip,
            )

    def step(self) -> StepStats | None:
        """Aggregate and update; ``None`` when not distributed (the plain optimizer step)."""
        if self._sync is None:
            self.optimizer.step()
            return None
        return self._sync.step(self.density)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups
