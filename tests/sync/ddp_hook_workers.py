"""Rank functions for the DDP hook's modes: whole-model scope, dense start, no overlap, NaN."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sync_workers as w
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from sparsgd.comm.worker_env import WorkerContext
from sparsgd.sync.ddp_hook import SparseHookState, sparse_allreduce_hook

MakeState = Callable[[torch.nn.Module], SparseHookState]


def _batch(step: int, rank: int, nan: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 * step + rank)
    x, y = torch.randn(5, 12, generator=gen), torch.randint(0, 3, (5,), generator=gen)
    if nan:
        x[0, 0] = float("nan")
    return x, y


def _run(
    ctx: WorkerContext,
    make: MakeState | None,
    nan_at: int | None = None,
    poison_at: int | None = None,
    skip_at: int | None = None,
) -> dict:
    """Gradients after each step, residual sums after each step, the error if one was raised.

    ``nan_at``: a NaN input on rank 1 at that step (every gradient NaN), the run stops there.
    ``poison_at``: a NaN in the last layer's weight gradient only on rank 1 at that step (the
    first bucket DDP hands over), the run goes on; ``skip_at``: no backward pass at that step.
    Both record every residual after each step in ``residual_steps``.
    """
    model = w.hook_model()
    ddp = DDP(model, bucket_cap_mb=w.HOOK_BUCKET_MB)
    state = None if make is None else make(model)
    if state is not None:
        ddp.register_comm_hook(state, sparse_allreduce_hook)
    poison = {"on": False}
    model[-1].weight.register_hook(lambda g: g * float("nan") if poison["on"] else g)
    out: dict = {"grads": [], "residual_sums": [], "error": None, "residual_steps": []}
    for step in range(w.HOOK_STEPS):
        x, y = _batch(step, ctx.rank, nan=step == nan_at and ctx.rank == 1)
        poison["on"] = step == poison_at and ctx.rank == 1
        ddp.zero_grad()
        try:
            if step != skip_at:
                torch.nn.functional.cross_entropy(ddp(x), y).backward()
        except RuntimeError as error:
            out["error"] = str(error)
            if poison_at is None:
                break
        if state is not None and (poison_at, skip_at) != (None, None):
            out["residual_steps"].append({i: e.clone() for i, e in state.residuals.items()})
        if step in (skip_at, poison_at):
            continue
        out["grads"].append([p.grad.detach().clone() for p in model.parameters()])
        if state is not None:
            out["residual_sums"].append(sum(float(e.abs().sum()) for e in state.residuals.values()))
    if state is not None:
        out["calls"] = state.calls
        out["residuals_after"] = {i: e.clone() for i, e in state.residuals.items()}
    return out


def _local_grads(rank: int) -> list[torch.Tensor]:
    """This rank's own step-0 gradient, no DDP: what the one-process reference starts from."""
    model = w.hook_model()
    x, y = _batch(0, rank)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    return [p.grad.detach().clone() for p in model.parameters()]


def hook_modes_run(ctx: WorkerContext, out: str) -> None:
    result = {
        "default": _run(ctx, None),
        "model_dense": _run(ctx, lambda m: SparseHookState(m, "gtopk", 1.0, scope="model")),
        "model_topk": _run(ctx, lambda m: SparseHookState(m, "topk", 0.1, scope="model")),
        "bucket_topk": _run(ctx, lambda m: SparseHookState(m, "topk", 0.1)),
        "start": _run(ctx, lambda m: SparseHookState(m, "gtopk", 0.1, start_iter=2)),
        "overlap": _run(ctx, lambda m: SparseHookState(m, "gtopk", 0.1)),
        "inline": _run(ctx, lambda m: SparseHookState(m, "gtopk", 0.1, overlap=False)),
        "nan": _run(ctx, lambda m: SparseHookState(m, "gtopk", 0.1), nan_at=1),
        "poisoned": _run(ctx, lambda m: SparseHookState(m, "gtopk", 0.1), poison_at=1),
        "skipped": _run(ctx, lambda m: SparseHookState(m, "gtopk", 0.1), skip_at=1),
        "local": _local_grads(ctx.rank),
    }
    torch.save(result, Path(out) / f"rank-{ctx.rank}.pt")


def every_hook_run(ctx: WorkerContext, hook_out: str, modes_out: str) -> None:
    """Both runs of the DDP hook tests in one launch: ``ddp_hook_run``, then the modes."""
    w.ddp_hook_run(ctx, hook_out)
    hook_modes_run(ctx, modes_out)
