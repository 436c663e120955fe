"""Top-k / gTop-k S-SGD with error feedback inside your own DDP script: a communication hook.

    state = SparseHookState(model, method="gtopk", density=0.01)
    ddp = DistributedDataParallel(model)
    ddp.register_comm_hook(state, sparse_allreduce_hook)

DDP groups the gradients into buckets and calls the hook once per bucket, in bucket order, on
every rank, with the bucket's flat gradient ``g`` (``bucket.buffer()``, the gradients of
``bucket.parameters()`` concatenated). For each bucket the hook does (docs/algorithms.md,
error feedback):

    if iteration < start_iter: return all_reduce(g) / P   # (0) dense start, no memory
    L = the bucket's parameter indices, in bucket order  # (1) its layout
    p = E_L + g                                          # (2) p_j = e_j + g_j, one add, (n,)
    --- on the communication thread, in bucket order ---
    R = collective.reduce(p, density)                    # (3) topk: all-gather; gtopk: tree
    E_L <- R.residual                                    # (4) e_j <- what was not sent
    g <- R.total / P; future <- g                        # (5) DDP writes it into param.grad

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

``e_j`` is parameter j's residual (none without error feedback), kept per parameter because
DDP rebuilds its buckets after the first iteration, but stored flat per bucket layout ``E_L``
(:mod:`sparsgd.sync.bucket_residuals`: a layout seen for the first time gathers its
parameters' residuals), so that a bucket costs one add and one copy whatever its number of
parameters; ``state_dict()`` names them by parameter index (the order of
``model.parameters()``) so that they save and load with the model. Step (5) writes the
average into the bucket's own buffer ``g``, which the collective no longer needs (it holds
``p``), as DDP's default all-reduce does: nothing of the bucket's size is allocated. Before
``start_iter`` (counted in backward passes, like PowerSGD's ``start_powerSGD_iter``) the
hook is DDP's own average and the residuals stay empty. Momentum and weight decay stay in
your optimizer.

With ``density = 1`` every entry is sent and the hook returns DDP's own average (tested against
DDP's default all-reduce). A NaN or Inf gradient on any rank makes the collective raise
``NonFiniteError`` on every rank; the future carries it and DDP raises it from ``backward``,
with every residual left as it was: a bucket that is not finite reaches the collective as
``g`` without touching the residuals (step (2) refuses it before reading them).
"""

# no ``from __future__ import annotations`` here: DDP checks the hook's annotations at run
# time and needs the real dist.GradBucket and torch.futures.Future[torch.Tensor] objects
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from sparsgd.comm import Collective, make_collective
from sparsgd.compress.checks import NonFiniteError, check_density, check_finite
from sparsgd.sync.bucket_residuals import BucketResiduals, Layout
from sparsgd.sync.config import METHODS

__all__ = ["HOOK_METHODS", "HOOK_SCOPES", "SparseHookState", "sparse_allreduce_hook"]

HOOK_METHODS = ("dense", "topk", "gtopk", "gtopk_exact")
HOOK_SCOPES = ("bucket", "model")
MODEL_KEY = -1  # the collective of scope "model" (bucket indices are >= 0)
Piece = tuple[torch.futures.Future[Tensor], Layout, Tensor]  # a bucket's future, layout, g
Job = tuple[list[Piece], Tensor]  # one reduction: its buckets in order, p (their p's joined)


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
        # e_j of every parameter j, flat per bucket layout (None without error feedback)
        sizes = [p.numel() for p in model.parameters()]
        self.memory = BucketResiduals(sizes) if error_feedback else None
        self.iteration = 0  # backward passes seen (the last bucket of each)
        self.calls = 0  # statistics: collectives run, bytes this rank sent and received
        self.bytes_sent = 0
        self.bytes_recv = 0
        self._collectives: dict[int, Collective] = {}  # bucket index (or MODEL_KEY) -> its own
        self._waiting: list[tuple[Piece, Tensor]] = []  # scope "model": (bucket, its p)
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
        if self.memory is None:
            return {}
        return {j: self.memory.residual(j) for j in range(len(self._index))}

    def layout(self, params: list[Tensor]) -> Layout:
        """(1) The indices of ``params`` in the order of ``model.parameters()``."""
        return tuple(self._index[id(p)] for p in params)

    def compensate(self, layout: Layout, g: Tensor) -> Tensor:
        """(2) ``p = E_L + g`` of the bucket; raises NonFiniteError, changing nothing, if g
        holds NaN or Inf."""
        if self.memory is None:
            return check_finite(g, "gradient")
        return self.memory.compensate(layout, g)

    def reduce_(self, key: int, job: Job) -> None:
        """(3)-(5) One collective on ``p``; changes the residuals of the buckets' parameters
        and writes each bucket's average into its buffer ``g``."""
        pieces, p = job
        reduced = self.collective(key).reduce(p, self.density)  # (3) raises on every rank
        world = dist.get_world_size(self.process_group)
        offset = 0
        for _, layout, g in pieces:
            n = g.numel()
            if self.memory is not None:
                self.memory.update_(layout, reduced.residual[offset : offset + n])  # (4)
            torch.div(reduced.total[offset : offset + n], world, out=g)  # (5)
            offset += n
        self.calls += 1
        self.bytes_sent += reduced.stats.bytes_sent
        self.bytes_recv += reduced.stats.bytes_recv

    def submit(self, key: int, job: Job) -> None:
        """Run ``reduce_(key, job)`` (on the thread when overlapping); it completes the futures
        of the job's buckets with their ``g``, or its error fails them all."""
        if self._thread is None:
            _complete(self, key, job)
        else:
            self._thread.submit(_complete, self, key, job)

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
            if self.memory is not None:
                self.memory.load_(int(i), e)
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
    if state.iteration < state.start_iter:  # (0) DDP's own average, residuals untouched
        state.iteration += last
        return _dense_average(g, state.process_group)
    layout = state.layout(bucket.parameters())  # (1)
    try:
        p = state.compensate(layout, g)  # (2)
    except NonFiniteError:
        p = g  # never reaches a residual: the collective raises on every rank
    future: torch.futures.Future[Tensor] = torch.futures.Future()
    state.iteration += last
    piece = (future, layout, g)
    if state.scope == "bucket":
        state.submit(bucket.index(), ([piece], p))
        return future
    state._waiting.append((piece, p))
    if last:  # scope "model": one collective on every bucket's p, in bucket order
        waiting, state._waiting = state._waiting, []
        joined = torch.cat([q for _, q in waiting])  # (d,)
        state.submit(MODEL_KEY, ([piece for piece, _ in waiting], joined))
    return future


def _dense_average(g: Tensor, group: dist.ProcessGroup | None) -> torch.futures.Future[Tensor]:
    """DDP's default: an asynchronous all_reduce of ``g``, divided by P when it completes."""
    world = dist.get_world_size(group)
    work = dist.all_reduce(g, group=group, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0].div_(world))


def _complete(state: SparseHookState, key: int, job: Job) -> None:
    """Run the job; set each bucket's future to its ``g``, or fail them all with the error."""
    try:
        state.reduce_(key, job)
    except Exception as error:  # the futures carry it to DDP, which raises it in backward
        for future, _, _ in job[0]:
            future.set_exception(error)
        return
    for future, _, g in job[0]:
        future.set_result(g)
