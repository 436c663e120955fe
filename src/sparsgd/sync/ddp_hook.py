"""Top-k / gTop-k S-SGD with error feedback inside your own DDP script: a communication hook.

    state = SparseHookState(model, method="gtopk", density=0.01)
    ddp = DistributedDataParallel(model)
    ddp.register_comm_hook(state, sparse_allreduce_hook)

DDP groups the gradients into buckets and calls the hook once per bucket, on every rank, with
the bucket's flat gradient ``g`` (``bucket.buffer()``, the gradients of ``bucket.parameters()``
concatenated). For each bucket the hook does (docs/algorithms.md, error feedback):

    g_j = slice of g for parameter j of the bucket       # (1) views, nothing copied
    p = cat(memory_j.compensate(g_j) for each j)         # (2) p = e + g, (n,)
    R = collective.reduce(p, density)                    # (3) topk: all-gather; gtopk: tree
    memory_j.update_(slice j of R.residual, R.sent in j) # (4) e_j <- what was not sent
    return R.total / P                                   # (5) DDP writes it into param.grad

``memory_j`` is :mod:`sparsgd.compress.memory`'s ``residual`` memory (``none`` without error
feedback), the same that :mod:`sparsgd.sync.step` uses for the whole model.
Each bucket (``bucket.index()``) has its own collective, which keeps its buffers and its
agreed input size from one step to the next.

So compression is per bucket: k = max(1, floor(density * n)) entries of each bucket of n
values, not of the whole model (``bucket_cap_mb`` sets the bucket size). Residuals are kept per
parameter, not per bucket, because DDP rebuilds its buckets after the first iteration; the
state's ``state_dict()`` names them by parameter index (the order of ``model.parameters()``)
so that they save and load with the model. Momentum and weight decay stay in your optimizer,
which then acts on the aggregated gradient, as in the gTop-k papers.

With ``density = 1`` every entry is sent and the hook returns DDP's own average (tested against
DDP's default all-reduce). A NaN or Inf gradient on any rank makes the collective raise
``NonFiniteError`` on every rank (during ``backward``), with every residual left as it was: a
rank whose bucket is not finite hands ``g`` to the collective without touching its memories.
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
from sparsgd.compress.memory import Memory, make_memory
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
        kind = "residual" if error_feedback else "none"
        # parameter index -> its error-feedback memory over (numel,)
        self.memories: dict[int, Memory] = {
            i: make_memory(kind, p.numel()) for i, p in enumerate(model.parameters())
        }
        self.calls = 0  # statistics: hook calls, bytes this rank sent and received
        self.bytes_sent = 0
        self.bytes_recv = 0
        # bucket index -> its collective: each owns buffers and an agreed size for its bucket
        self._collectives: dict[int, Collective] = {}

    def collective(self, bucket_index: int) -> Collective:
        """The collective of bucket ``bucket_index``, built on first use (the process group
        exists by then): buckets differ in size, and a collective reuses its buffers and its
        agreed input size only across calls of one size."""
        if bucket_index not in self._collectives:
            made = make_collective(METHODS[self.method], self.process_group)
            self._collectives[bucket_index] = made
        return self._collectives[bucket_index]

    @property
    def residuals(self) -> dict[int, Tensor]:
        """Parameter index -> its residual ``e`` (empty without error feedback)."""
        return {i: m.state_dict()["e"] for i, m in self.memories.items() if m.name == "residual"}

    def compensate(self, params: list[Tensor], g: Tensor) -> Tensor:
        """(1), (2) ``p`` of the bucket: each parameter's memory applied to its slice of g."""
        return torch.cat([self._memory(p).compensate(g_j) for p, g_j in _slices(params, g)])

    def update_(self, params: list[Tensor], residual: Tensor, sent: Tensor) -> None:
        """(4) Each parameter's memory keeps its slice of ``residual`` (changes the memories)."""
        offset = 0
        for p, e_j in _slices(params, residual):
            mine = sent[(sent >= offset) & (sent < offset + p.numel())] - offset
            self._memory(p).update_(e_j, mine)
            offset += p.numel()

    def _memory(self, p: Tensor) -> Memory:
        return self.memories[self._index[id(p)]]

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
        for i, e in state["residuals"].items():
            self.memories[int(i)].load_state_dict({"e": e})
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
    low, high = torch.aminmax(g.detach())
    finite = bool(low.isfinite() & high.isfinite())
    p = state.compensate(params, g) if finite else g  # (1), (2) a NaN g never reaches memory
    collective = state.collective(bucket.index())
    reduced = collective.reduce(p, state.density)  # (3) raises on every rank if NaN
    state.update_(params, reduced.residual, reduced.sent)  # (4)
    state.calls += 1
    state.bytes_sent += reduced.stats.bytes_sent
    state.bytes_recv += reduced.stats.bytes_recv
    future: torch.futures.Future[Tensor] = torch.futures.Future()
    future.set_result((reduced.total / world).to(g.dtype))  # (5)
    return future


def _slices(params: list[Tensor], flat: Tensor) -> list[tuple[Tensor, Tensor]]:
    """``(parameter, its (numel,) view of flat)`` in bucket order."""
    out, offset = [], 0
    for p in params:
        out.append((p, flat[offset : offset + p.numel()]))
        offset += p.numel()
    return out
