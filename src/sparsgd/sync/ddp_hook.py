"""Top-k / gTop-k S-SGD with error feedback inside your own DDP script: a communication hook.

    state = SparseHookState(model, method="gtopk", density=0.01)
    ddp = DistributedDataParallel(model)
    ddp.register_comm_hook(state, sparse_allreduce_hook)

DDP groups the gradients into buckets and calls the hook once per bucket, in bucket order, on
every rank, with the bucket's flat gradient ``g`` (``bucket.buffer()``, the gradients of
``bucket.parameters()`` concatenated). For each bucket the hook does (docs/algorithms.md,
error feedback):

    if iteration < start_iter: return all_reduce(g) / P   # (0) dense start, no memory
    g_j = slice of g for parameter j of the bucket       # (1) views, nothing copied
    p = cat(memory_j.compensate(g_j) for each j)         # (2) p = e + g, (n,)
    --- on the communication thread, in bucket order ---
    R = collective.reduce(p, density)                    # (3) topk: all-gather; gtopk: tree
    memory_j.update_(slice j of R.residual, R.sent in j) # (4) e_j <- what was not sent
    future <- R.total / P                                # (5) DDP writes it into param.grad

Overlap: steps (3)-(5) run on one communication thread with its own process group, and the
hook returns at once a future that step (5) completes, so the backward pass of the next
buckets runs while this bucket's collective is on the wire (``overlap=False`` runs them in
the hook). One thread keeps the collectives in bucket order, the same on every rank. The
thread's group is made with ``dist.new_group`` when the state is built (or at the first hook
call if the process group did not exist yet); every rank of the default group must build
the state, as every rank does with DDP.

Scope ``"bucket"``: k = max(1, floor(density * n)) entries of each bucket of n values, one
collective per bucket (``bucket.index()``), each keeping its buffers and agreed input size.
Scope ``"model"``: the buckets' ``p`` are collected and one collective runs on their
concatenation when the last bucket arrives: k = floor(density * d) over the whole model, the
largest entries wherever they are (the sync trainer's selection), at the price of the overlap:
that collective starts after the whole backward pass.

``memory_j`` is :mod:`sparsgd.compress.memory`'s ``residual`` memory (``none`` without error
feedback), kept per parameter, not per bucket, because DDP rebuilds its buckets after the
first iteration; ``state_dict()`` names them by parameter index (the order of
``model.parameters()``) so that they save and load with the model. Before ``start_iter``
(counted in backward passes, like PowerSGD's ``start_powerSGD_iter``) the hook is DDP's own
average and the memories stay empty. Momentum and weight decay stay in your optimizer.

With ``density = 1`` every entry is sent and the hook returns DDP's own average (tested against
DDP's default all-reduce). A NaN or Inf gradient on any rank makes the collective raise
``NonFiniteError`` on every rank; the future carries it and DDP raises it from ``backward``,
with every residual left as it was: a bucket that is not finite reaches the collective as
``g`` without touching its memories.
"""

# no ``from __future__ import annotations`` here: DDP checks the hook's annotations at run
# time and needs the real dist.GradBucket and torch.futures.Future[torch.Tensor] objects
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from sparsgd.comm import Collective, make_collective
from sparsgd.compress.checks import check_density
from sparsgd.compress.memory import Memory, make_memory
from sparsgd.sync.config import METHODS

__all__ = ["HOOK_METHODS", "HOOK_SCOPES", "SparseHookState", "sparse_allreduce_hook"]

HOOK_METHODS = ("dense", "topk", "gtopk", "gtopk_exact")
HOOK_SCOPES = ("bucket", "model")
MODEL_KEY = -1  # the collective of scope "model" (bucket indices are >= 0)
Job = tuple[list[Tensor], Tensor, torch.dtype]  # one reduction: params, p, gradient dtype
Pieces = list[tuple[torch.futures.Future[Tensor], int]]  # each bucket's future and length


class SparseHookState:
    """Settings, then per-parameter residuals and the communication thread, then traffic."""

    def __init__(
        self,
        model: nn.Module,
        method: str = "gtopk",
        density: float = 0.01,
        error_feedback: bool = True,
        process_group: dist.ProcessGroup | None = None,
        scope: str = "bucket",
        start_iter: int = 0,
        overlap: bool = True,
    ) -> None:
        if method not in HOOK_METHODS:
            raise ValueError(f"method must be one of {list(HOOK_METHODS)}; got {method!r}")
        if scope not in HOOK_SCOPES:
            raise ValueError(f"scope must be one of {list(HOOK_SCOPES)}; got {scope!r}")
        if start_iter < 0:
            raise ValueError(f"start_iter must be >= 0 (backward passes); got {start_iter}")
        self.method, self.density, self.scope = method, check_density(density), scope
        self.error_feedback, self.start_iter, self.overlap = error_feedback, start_iter, overlap
        self.process_group = process_group
        self._index = {id(p): i for i, p in enumerate(model.parameters())}
        kind = "residual" if error_feedback else "none"
        # parameter index -> its error-feedback memory over (numel,)
        self.memories: dict[int, Memory] = {
            i: make_memory(kind, p.numel()) for i, p in enumerate(model.parameters())
        }
        self.iteration = 0  # backward passes seen (the last bucket of each)
        self.calls = 0  # statistics: collectives run, bytes this rank sent and received
        self.bytes_sent = 0
        self.bytes_recv = 0
        self._collectives: dict[int, Collective] = {}  # bucket index (or MODEL_KEY) -> its own
        self._waiting: list[tuple[torch.futures.Future[Tensor], Job]] = []  # scope "model"
        self._thread: ThreadPoolExecutor | None = None
        self._group: dist.ProcessGroup | None = None
        if overlap and dist.is_initialized():
            self._comm_group()

    def _comm_group(self) -> dist.ProcessGroup:
        """The communication thread's own group: the ranks of ``process_group``."""
        if self._group is None:
            ranks = None
            if self.process_group is not None:
                ranks = dist.get_process_group_ranks(self.process_group)
            self._group = dist.new_group(ranks)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="sparsgd-ddp-hook")
        return self._group

    def collective(self, key: int) -> Collective:
        """The collective of bucket ``key`` (or of the whole model), built on first use: buckets
        differ in size, and a collective reuses buffers and agreed size across calls of one."""
        if key not in self._collectives:
            group = self._comm_group() if self.overlap else self.process_group
            self._collectives[key] = make_collective(METHODS[self.method], group)
        return self._collectives[key]

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

    def reduce_(self, key: int, job: Job) -> Tensor:
        """(3)-(5) One collective on ``p``; changes the memories of ``params``."""
        params, p, dtype = job
        reduced = self.collective(key).reduce(p, self.density)  # (3) raises on every rank
        self.update_(params, reduced.residual, reduced.sent)  # (4)
        self.calls += 1
        self.bytes_sent += reduced.stats.bytes_sent
        self.bytes_recv += reduced.stats.bytes_recv
        world = dist.get_world_size(self.process_group)
        return (reduced.total / world).to(dtype)  # (5)

    def submit(self, reduce: Callable[[], Tensor], pieces: Pieces) -> None:
        """Run ``reduce`` (on the thread when overlapping); its result, cut into the buckets'
        lengths in order, completes their futures (or its error fails them all)."""
        if self._thread is None:
            _complete(reduce, pieces)
        else:
            self._thread.submit(_complete, reduce, pieces)

    def _memory(self, p: Tensor) -> Memory:
        return self.memories[self._index[id(p)]]

    def state_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "density": self.density,
            "error_feedback": self.error_feedback,
            "scope": self.scope,
            "residuals": {i: e.detach().cpu().clone() for i, e in self.residuals.items()},
            "iteration": self.iteration,
            "calls": self.calls,
            "bytes_sent": self.bytes_sent,
            "bytes_recv": self.bytes_recv,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("method", "density", "error_feedback", "scope"):
            saved = state.get(key, "bucket")  # states saved before scopes existed: per bucket
            if saved != getattr(self, key):
                raise ValueError(
                    f"hook state was saved with {key}={saved!r}; this state has "
                    f"{key}={getattr(self, key)!r}"
                )
        n_params = len(self._index)
        bad = [i for i in state["residuals"] if not 0 <= int(i) < n_params]
        if bad:
            raise ValueError(f"residual indices must be in [0, {n_params}); got {bad}")
        for i, e in state["residuals"].items():
            self.memories[int(i)].load_state_dict({"e": e})
        self.iteration = int(state.get("iteration", 0))
        self.calls = int(state["calls"])
        self.bytes_sent = int(state["bytes_sent"])
        self.bytes_recv = int(state["bytes_recv"])


def sparse_allreduce_hook(
    state: SparseHookState, bucket: dist.GradBucket
) -> torch.futures.Future[Tensor]:
    """DDP communication hook: the bucket's averaged sparse gradient (module docstring)."""
    g = bucket.buffer()  # (n,) this bucket's gradients, flat
    last = bucket.is_last()
    if state.iteration < state.start_iter:  # (0) DDP's own average, memories untouched
        state.iteration += last
        return _dense_average(g, state.process_group)
    params = bucket.parameters()
    low, high = torch.aminmax(g.detach())
    finite = bool(low.isfinite() & high.isfinite())
    p = state.compensate(params, g) if finite else g  # (1), (2) a NaN g never reaches memory
    future: torch.futures.Future[Tensor] = torch.futures.Future()
    state.iteration += last
    if state.scope == "bucket":
        key, job = bucket.index(), (params, p, g.dtype)
        state.submit(lambda: state.reduce_(key, job), [(future, g.numel())])
        return future
    state._waiting.append((future, (params, p, g.dtype)))
    if last:  # scope "model": one collective on every bucket's p, in bucket order
        waiting, state._waiting = state._waiting, []
        everything = [q for _, (ps, _, _) in waiting for q in ps]
        job = (everything, torch.cat([j[1] for _, j in waiting]), g.dtype)
        pieces = [(f, j[1].numel()) for f, j in waiting]
        state.submit(lambda: state.reduce_(MODEL_KEY, job), pieces)
    return future


def _dense_average(g: Tensor, group: dist.ProcessGroup | None) -> torch.futures.Future[Tensor]:
    """DDP's default: an asynchronous all_reduce of ``g``, divided by P when it completes."""
    world = dist.get_world_size(group)
    work = dist.all_reduce(g, group=group, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0].div_(world))


def _complete(reduce: Callable[[], Tensor], pieces: Pieces) -> None:
    """Set each future to its bucket's piece of ``reduce()``, or fail them all with its error."""
    try:
        total = reduce()
    except Exception as error:  # the futures carry it to DDP, which raises it in backward
        for future, _ in pieces:
            future.set_exception(error)
        return
    if len(pieces) == 1:
        pieces[0][0].set_result(total)
        return
    offset = 0
    for future, n in pieces:  # DDP reads a result from its storage's start: own storage each
        future.set_result(total[offset : offset + n].clone())
        offset += n


def _slices(params: list[Tensor], flat: Tensor) -> list[tuple[Tensor, Tensor]]:
    """``(parameter, its (numel,) view of flat)`` in bucket order."""
    out, offset = [], 0
    for p in params:
        out.append((p, flat[offset : offset + p.numel()]))
        offset += p.numel()
    return out
