"""Worker functions for the launcher tests (module level, so that spawned children find them)."""

from __future__ import annotations

from pathlib import Path

import torch

from sparsgd.comm.launch import WorkerContext

# -- SyncSGD on a tiny regression problem, shared by the worker and the one-process reference --
TINY_IN, TINY_OUT, TINY_BATCH = 6, 4, 8
TINY_STEPS = 4
TINY_DENSITY = 0.25  # k = 7 of d = 28 entries
TINY_LR, TINY_MOMENTUM, TINY_WD = 0.1, 0.9, 0.01
NAN_STEP, NAN_RANK = 2, 1  # in the skip check: this rank's gradient is NaN at this step


def tiny_model() -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch.nn.Linear(TINY_IN, TINY_OUT)


def tiny_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        model.parameters(), lr=TINY_LR, momentum=TINY_MOMENTUM, weight_decay=TINY_WD
    )


def tiny_backward(model: torch.nn.Module, step: int, rank: int) -> None:
    """Gradient of rank ``rank``'s own mini-batch at ``step`` into ``param.grad``."""
    gen = torch.Generator().manual_seed(1000 * step + rank)
    x = torch.randn(TINY_BATCH, TINY_IN, generator=gen)
    y = torch.randn(TINY_BATCH, TINY_OUT, generator=gen)
    model.zero_grad(set_to_none=True)
    torch.nn.functional.mse_loss(model(x), y).backward()


def sync_sgd_run(ctx: WorkerContext, out: str) -> None:
    """For each collective: TINY_STEPS steps of SyncSGD; then a run with a NaN on one rank."""
    from sparsgd.comm import COLLECTIVES, make_collective
    from sparsgd.compress import make_memory
    from sparsgd.sync.step import SyncSGD
    from sparsgd.worker.flat_model import flat_params

    result = {}
    for name in sorted(COLLECTIVES):
        model = tiny_model()
        params = list(model.parameters())
        memory = make_memory("residual", sum(p.numel() for p in params))
        sgd = SyncSGD(params, tiny_optimizer(model), make_collective(name), memory, ctx.world_size)
        where_e = []  # the memory of e after each step: swapped with p, or copied into
        for step in range(TINY_STEPS):
            tiny_backward(model, step, ctx.rank)
            sgd.step(TINY_DENSITY)
            where_e.append(memory.e.data_ptr())
        result[name] = {
            "params": flat_params(params),
            "residual": memory.state_dict()["e"],
            "where_e": where_e,
        }
    # non-finite gradient on one rank: every rank skips that step and counts it
    model = tiny_model()
    params = list(model.parameters())
    memory = make_memory("residual", sum(p.numel() for p in params))
    sgd = SyncSGD(params, tiny_optimizer(model), make_collective("gtopk"), memory, ctx.world_size)
    trace = []
    for step in range(TINY_STEPS):
        tiny_backward(model, step, ctx.rank)
        if step == NAN_STEP and ctx.rank == NAN_RANK:
            params[0].grad[0, 0] = float("nan")
        before = (flat_params(params), memory.state_dict()["e"].clone())
        stats = sgd.step(TINY_DENSITY)
        after = (flat_params(params), memory.state_dict()["e"].clone())
        trace.append(
            {
                "skipped": stats.skipped,
                "params_unchanged": bool(torch.equal(before[0], after[0])),
                "residual_unchanged": bool(torch.equal(before[1], after[1])),
                "residual_finite": bool(torch.isfinite(after[1]).all()),
            }
        )
    result["nan"] = {"trace": trace, "skipped_nonfinite": sgd.skipped_nonfinite}
    result["replicas"] = replica_check(ctx, model)
    torch.save(result, Path(out) / f"rank-{ctx.rank}.pt")


def replica_check(ctx: WorkerContext, model: torch.nn.Module) -> dict:
    """The digest check on identical replicas, then after one rank's last bit flipped."""
    from sparsgd.sync.replicas import ReplicaMismatch, check_replicas

    same = check_replicas(model, step=0)
    if ctx.rank == ctx.world_size - 1:
        with torch.no_grad():
            w = model.weight.view(-1)
            w[0] = torch.nextafter(w[0], torch.tensor(float("inf")))  # one ulp: bits differ
    try:
        check_replicas(model, step=1)
        mismatch = ""
    except ReplicaMismatch as error:
        mismatch = str(error)
    return {"digest": same, "mismatch": mismatch}


# -- the DDP communication hook -------------------------------------------------------------
HOOK_STEPS = 3
HOOK_BUCKET_MB = 0.001  # ~1 KB buckets: the small model spreads over several buckets


def hook_model() -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(12, 32),
            torch.nn.ReLU(),
            torch.nn.Linear(32, 16),
            torch.nn.ReLU(),
            torch.nn.Linear(16, 3),
        )


def _hook_grads(ctx: WorkerContext, hook_state) -> list[list[torch.Tensor]]:
    """Gradients DDP leaves in the parameters after each of HOOK_STEPS backward passes."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    from sparsgd.sync.ddp_hook import sparse_allreduce_hook

    model = hook_model()
    ddp = DDP(model, bucket_cap_mb=HOOK_BUCKET_MB)
    if hook_state is not None:
        ddp.register_comm_hook(hook_state(model), sparse_allreduce_hook)
    grads = []
    for step in range(HOOK_STEPS):
        gen = torch.Generator().manual_seed(100 * step + ctx.rank)
        x, y = torch.randn(5, 12, generator=gen), torch.randint(0, 3, (5,), generator=gen)
        ddp.zero_grad()
        torch.nn.functional.cross_entropy(ddp(x), y).backward()
        grads.append([p.grad.detach().clone() for p in model.parameters()])
    return grads


def ddp_hook_run(ctx: WorkerContext, out: str) -> None:
    """Default DDP all-reduce vs the sparse hook at density 1, and a state round trip."""
    from functools import partial

    from sparsgd.sync.ddp_hook import SparseHookState

    result = {"default": _hook_grads(ctx, None)}
    for method in ("topk", "gtopk"):
        make = partial(SparseHookState, method=method, density=1.0)
        result[method] = _hook_grads(ctx, make)
    # density < 1: residuals build up; they survive a state_dict round trip
    states = []
    result["sparse"] = _hook_grads(
        ctx, lambda m: states.append(SparseHookState(m, "gtopk", 0.1)) or states[-1]
    )
    saved = states[0].state_dict()
    fresh = SparseHookState(hook_model(), "gtopk", 0.1)
    fresh.load_state_dict(saved)
    result["saved"] = saved
    result["reloaded"] = fresh.state_dict()
    result["n_buckets_calls"] = states[0].calls
    torch.save(result, Path(out) / f"rank-{ctx.rank}.pt")
