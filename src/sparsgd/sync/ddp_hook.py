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
    R = collective.reduce(p, density, overwrite=True)    # (3) topk: all-gather; gtopk: tree
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
Scope ``"model"``: step (2) writes each bucket's ``p`` at its place in one ``(d,)`` buffer
the state owns and reuses (buckets in arrival order), and one collective runs on it when the
last bucket arrives: k = floor(density * d) over the whole model, the largest entries
wherever they are (the sync trainer's selection), at the price of the overlap: that
collective starts after the whole backward pass. Its cost does not grow with the number of
buckets but by one hook call each (no concatenation, no allocation).

``e_j`` is parameter j's residual (none without error feedback), kept per parameter because
DDP rebuilds its buckets after the first iteration, but stored flat per bucket layout ``E_L``
(:mod:`sparsgd.sync.bucket_residuals`: a layout seen for the first time gathers its
parameters' residuals), so that a bucket costs one add whatever its number of parameters;
``state_dict()`` names them by parameter index (the order of ``model.parameters()``) so that
they save and load with the model. ``p`` is scratch the hook owns (the layout's buffer P, the
model buffer, or without error feedback ``g`` itself, which (5) overwrites), so (3) hands it
over (``overwrite=True``, comm/base.py): a sparse collective turns ``p`` into the residual in
place, the same bits as a copy would hold, and (4) then swaps E_L and P instead of copying
(scope "model": one copy per bucket out of the model buffer). Step (5) writes the average
into the bucket's own buffer ``g``, which the collective no longer needs, as DDP's default
all-reduce does: nothing of the bucket's size is allocated. Before
``start_iter`` (counted in backward passes, like PowerSGD's ``start_powerSGD_iter``) the
hook is DDP's own average and the residuals stay empty. Momentum and weight decay stay in
your optimizer.

With ``density = 1`` every entry is sent and the hook returns DDP's own average (tested against
DDP's default all-reduce). A NaN or Inf gradient on any rank makes the collective raise
``NonFiniteError`` on every rank; the future carries it and DDP raises it from ``backward``,
with every residual left as it was: step (2) writes only ``p``, never E, and the collective
finds the NaN or Inf in ``p`` at no cost of its own (comm/base.py, (2a) and (2b)), so the hook
makes no finiteness pass over ``g``. A collective error is raised on every rank (comm/base.py),
so after one the later buckets of the same backward pass fail with the same error on every
rank without running their collectives, their residuals untouched; and a backward pass begins
(its first bucket) by waiting until the jobs of the previous one are done, so that a pass
DDP gave up on never runs on the next pass's buffers.
"""

# no ``from __future__ import annotations`` here: DDP checks the hook's annotations at run
# time and needs the real dist.GradBucket and torch.futures.Future[torch.Tensor] objects
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from sparsgd.comm import Collective, make_collective
from sparsgd.comm.stats import PHASES
from sparsgd.compress.checks import check_density
from sparsgd.sync.bucket_residuals import BucketResiduals, Layout
from sparsgd.sync.config import METHODS

__all__ = ["HOOK_METHODS", "HOOK_SCOPES", "SparseHookState", "sparse_allreduce_hook"]

HOOK_METHODS = ("dense", "topk", "gtopk", "gtopk_exact")
HOOK_SCOPES = ("bucket", "model")
MODEL_KEY = -1  # the collective of scope "model" (bucket indices are >= 0)
Piece = tuple[torch.futures.Future[Tensor], Layout, Tensor]  # a bucket's future, layout, g
Job = tuple[list[Piece], Tensor, int]  # one reduction: its buckets, p, the backward pass


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
        self._numel = sum(sizes)  # d: the model buffer of scope "model" holds every bucket
        self.iteration = 0  # backward passes seen (the last bucket of each)
        self.calls = 0  # statistics: collectives run, bytes this rank sent and received
        self.bytes_sent = 0
        self.bytes_recv = 0
        self.seconds = dict.fromkeys(PHASES, 0.0)  # statistics: the collectives' phases, summed
        self._collectives: dict[int, Collective] = {}  # bucket index (or MODEL_KEY) -> its own
        self._waiting: list[Piece] = []  # scope "model": this step's buckets so far
        self._joined = torch.empty(0)  # scope "model": (d,) every bucket's p, in arrival order
        self._filled = 0  # scope "model": entries of _joined written this step
        self._thread: ThreadPoolExecutor | None = None
        self._group: dist.ProcessGroup | None = None
        self._last_job: Future[None] | None = None  # the job submitted last to the thread
        self._failed: tuple[int, Exception] | None = None  # (pass, error) of a failed collective
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

    def compensate(self, layout: Layout, g: Tensor, out: Tensor | None = None) -> Tensor:
        """(2) ``p = E_L + g`` of the bucket (into ``out`` if given); writes no residual. No
        finiteness test: the collective refuses a NaN or Inf in ``p`` on every rank."""
        if self.memory is None:
            return g if out is None else out.copy_(g)
        return self.memory.compensate(layout, g, out, check=False)

    def joined_slot(self, g: Tensor) -> Tensor:
        """Scope "model": where the next bucket's ``p`` goes in the model buffer (made again
        only when the buckets outgrow it or its dtype or device changes)."""
        start, n = self._filled, g.numel()
        kind = g.dtype if self.memory is None else torch.promote_types(self.memory.dtype, g.dtype)
        joined = self._joined
        if joined.numel() < start + n or joined.dtype != kind or joined.device != g.device:
            joined = torch.empty(max(start + n, self._numel), dtype=kind, device=g.device)
            joined[:start].copy_(self._joined[:start])  # earlier buckets of this step
            self._joined = joined
        self._filled = start + n
        return joined[start : start + n]

    def reduce_(self, key: int, job: Job) -> None:
        """(3)-(5) One collective on ``p``; changes the residuals of the buckets' parameters
        and writes each bucket's average into its buffer ``g``."""
        pieces, p, backward_pass = job
        try:
            reduced = self.collective(key).reduce(p, self.density, overwrite=True)  # (3)
        except Exception as error:  # raised on every rank: skip the rest of this pass
            self._failed = (backward_pass, error)
            raise
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
        for phase in PHASES:
            self.seconds[phase] += getattr(reduced.stats, f"{phase}_s")

    def submit(self, key: int, job: Job) -> None:
        """Run ``reduce_(key, job)`` (on the thread when overlapping); it completes the futures
        of the job's buckets with their ``g``, or its error fails them all."""
        if self._thread is None:
            _complete(self, key, job)
        else:
            self._last_job = self._thread.submit(_complete, self, key, job)

    def begin_pass(self) -> None:
        """At a backward pass's first bucket: wait for the jobs of the previous pass (done
        already unless DDP gave up on it), forget the buckets it left in scope "model"."""
        if self._last_job is not None:
            self._last_job.result()  # _complete catches every error: this only waits
        self._waiting, self._filled = [], 0

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
    if bucket.index() == 0:
        state.begin_pass()
    layout = state.layout(bucket.parameters())  # (1)
    future: torch.futures.Future[Tensor] = torch.futures.Future()
    backward_pass = state.iteration
    state.iteration += last
    piece = (future, layout, g)
    if state.scope == "bucket":
        p = state.compensate(layout, g)  # (2)
        state.submit(bucket.index(), ([piece], p, backward_pass))
        return future
    state.compensate(layout, g, out=state.joined_slot(g))  # (2) at its place in (d,)
    state._waiting.append(piece)
    if last:  # scope "model": one collective on every bucket's p, in bucket order
        pieces, state._waiting = state._waiting, []
        joined, state._filled = state._joined[: state._filled], 0
        state.submit(MODEL_KEY, (pieces, joined, backward_pass))
    return future


def _dense_average(g: Tensor, group: dist.ProcessGroup | None) -> torch.futures.Future[Tensor]:
    """DDP's default: an asynchronous all_reduce of ``g``, divided by P when it completes."""
    world = dist.get_world_size(group)
    work = dist.all_reduce(g, group=group, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0].div_(world))


def _complete(state: SparseHookState, key: int, job: Job) -> None:
    """Run the job; set each bucket's future to its ``g``, or fail them all with the error
    (without running it if a collective of the same backward pass failed before)."""
    try:
        if state._failed is not None and state._failed[0] == job[2]:
            raise state._failed[1]
        state.reduce_(key, job)
    except Exception as error:  # the futures carry it to DDP, which raises it in backward
        for future, _, _ in job[0]:
            future.set_exception(error)
        return
    for future, _, g in job[0]:
        future.set_result(g)
