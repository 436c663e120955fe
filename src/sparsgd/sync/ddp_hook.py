"""Top-k / gTop-k S-SGD with error feedback inside your own DDP script: a communication hook.

    state = SparseHookState(model, method="gtopk", density=0.01)
    ddp = DistributedDataParallel(model)
    ddp.register_comm_hook(state, sparse_allreduce_hook)

DDP groups the gradients into buckets and calls the hook once per bucket, on every rank, with
the bucket's flat gradient ``g`` (``bucket.buffer()``, the gradients of ``bucket.parameters()``
concatenated). For each bucket the hook does (docs/algorithms.md sections 2 and 3):

    e = cat(residual of each parameter of the bucket)   # (1) error-feedback memory, (n,)
    p = e + g                                           # (2)
    R = collective.reduce(p, density)                   # (3) topk: all-gather; gtopk: tree
    residual of each parameter <- its slice of R.residual  # (4)
    return R.total / P                                  # (5) DDP writes it into param.grad

So compression is per bucket: k = max(1, floor(density * n)) entries of each bucket of n
values, not of the whole model (``bucket_cap_mb`` sets the bucket size). Residuals are kept per
parameter, not per bucket, because DDP rebuilds its buckets after the first iteration; the
state's ``state_dict()`` names them by parameter index (the order of ``model.parameters()``)
so that they save and load with the model. Momentum and weight decay stay in your optimizer,
which then acts on the aggregated gradient, as in the gTop-k papers.

With ``density = 1`` every entry is sent and the hook returns DDP's own average (tested against
DDP's default all-reduce). A NaN or Inf gradient on any rank makes the collective raise
``NonFiniteError`` on every rank (during ``backward``), with every residual left as it was.
The hook runs the collective synchronously: communication does not overlap the backward pass.
"""

# no ``from __future__ import annotations`` here: DDP checks the hook's annotations at run
# time and needs the real dist.GradBucket and torch.futures.Future[torch.Tensor] objects
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from sparsgd.comm import Collective, make_collective
from sparsgd.compress.checks import check_density
from sparsgd.sync.config import METHODS

__all__ = ["HOOK_METHODS", "SparseHookState", "sparse_allreduce_hook"]

HOOK_METHODS = ("dense", "topk", "gtopk", "gtopk_exact")


class SparseHookState:
    """Settings (method, density, error feedback), then per-parameter residuals, then traffic."""

    def __init__(
        self,
        model: nn.Module,
        method: str = "gtopk",
        density: float = 0.01,
        error_feedback: bool = True,
        process_group: dist.ProcessGroup | None = None,
    ) -> None:
        if method not in HOOK_METHODS:
            raise ValueError(f"method must be one of {list(HOOK_METHODS)}; got {method!r}")
        self.method = method
        self.density = check_density(density)
        self.error_feedback = error_feedback
        self.process_group = process_group
        self._index = {id(p): i for i, p in enumerate(model.parameters())}
        self.residuals: dict[int, Tensor] = {}  # parameter index -> residual, shaped (numel,)
        self.calls = 0  # statistics: hook calls, bytes this rank sent and received
        self.bytes_sent = 0
        self.bytes_recv = 0
        self._collective: Collective | None = None

    @property
    def collective(self) -> Collective:
        """Built on first use: the process group exists by then."""
        if self._collective is None:
            self._collective = make_collective(METHODS[self.method], self.process_group)
        return self._collective

    def gather_residual(self, params: list[Tensor], like: Tensor) -> Tensor:
        """``e`` of the bucket: the parameters' residuals concatenated, zeros where none yet."""
        parts = []
        for p in params:
            e = self.residuals.get(self._index[id(p)])
            parts.append(
                torch.zeros(p.numel(), dtype=like.dtype, device=like.device) if e is None else e
            )
        return torch.cat(parts)

    def scatter_residual_(self, params: list[Tensor], residual: Tensor) -> None:
        """Keep each parameter's slice of the bucket's residual (changes ``self.residuals``)."""
        offset = 0
        for p in params:
            self.residuals[self._index[id(p)]] = residual[offset : offset + p.numel()].clone()
            offset += p.numel()

    def state_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "density": self.density,
            "error_feedback": self.error_feedback,
            "residuals": {i: e.detach().cpu().clone() for i, e in self.residuals.items()},
            "calls": self.calls,
            "bytes_sent": self.bytes_sent,
            "bytes_recv": self.bytes_recv,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("method", "density", "error_feedback"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"hook state was saved with {key}={state[key]!r}; this state has "
                    f"{key}={getattr(self, key)!r}"
                )
        n_params = len(self._index)
        bad = [i for i in state["residuals"] if not 0 <= int(i) < n_params]
        if bad:
            raise ValueError(f"residual indices must be in [0, {n_params}); got {bad}")
        self.residuals = {int(i): e.clone() for i, e in state["residuals"].items()}
        self.calls = int(state["calls"])
        self.bytes_sent = int(state["bytes_sent"])
        self.bytes_recv = int(state["bytes_recv"])


def sparse_allreduce_hook(
    state: SparseHookState, bucket: dist.GradBucket
) -> torch.futures.Future[Tensor]:
    """DDP communication hook: the bucket's averaged sparse gradient (module docstring)."""
    g = bucket.buffer()  # (n,) this bucket's gradients, flat
    params = bucket.parameters()
    world = dist.get_world_size(state.process_group)
    e = state.gather_residual(params, g) if state.error_feedback else torch.zeros_like(g)  # (1)
    p = e + g  # (2)
    reduced = state.collective.reduce(p, state.density)  # (3)
    if state.error_feedback:
        state.scatter_residual_(params, reduced.residual)  # (4)
    state.calls += 1
    state.bytes_sent += reduced.stats.bytes_sent
    state.bytes_recv += reduced.stats.bytes_recv
    future: torch.futures.Future[Tensor] = torch.futures.Future()
    future.set_result((reduced.total / world).to(g.dtype))  # (5)
    return future
