"""Time one DDP training step with each communication hook, on P local processes in one run.

Every rank builds the same MLP (``layers`` Linear layers of ``width`` x ``width`` with ReLU
between, d = layers (width^2 + width)), wraps it in DistributedDataParallel and times a step:

    zero_grad; loss = cross_entropy(ddp(x), y); loss.backward(); SGD step

with these hooks, each under its own DDP instance (``bucket_cap_mb`` sets the buckets):

    allreduce            DDP's default all-reduce, many buckets
    powersgd             torch's powerSGD_hook (rank 1, start_powerSGD_iter = WARMUP - 1),
                         one bucket: on gloo (CPU) it waits for an all_reduce inside a future
                         callback, and with several buckets in flight the step never ended
                         here (torch 2.13); with one bucket it runs
    sparse_one_bucket    sparsgd's hook, gtopk at ``density``, one bucket (cap above d)
    sparse_many          the same hook, many buckets (cap ``bucket_mb``)
    sparse_many_inline   many buckets, overlap=False: the collective inside the hook
    sparse_model_scope   many buckets, scope "model": top-k of the whole model, one collective

Each variant has its own model copy and DDP instance and runs WARMUP untimed steps (DDP
rebuilds its buckets after the first; PowerSGD starts compressing after its start
iteration). Then come ``repeats`` rounds of one timed step of every variant in turn, each
after a barrier, so that load from other work on the machine falls on every variant alike.
A step's time is that of the slowest rank; the row gives the median over the repeats, the
collectives the hook ran per step, and ``ratio_to_allreduce`` measured in this same run.
``cpu_ms`` is the median over the repeats of the CPU time of the busiest rank's process (all
its threads, the communication thread and gloo's included) during the step: on a machine
whose cores are all busy, wall time follows CPU time, and CPU time moves less with load.
``select_ms``, ``comm_ms`` and ``apply_ms`` split the sparse hooks' collectives of a step into
the phases their ledgers time (:mod:`sparsgd.comm.stats`: local top-k and tree merges, on or
waiting for the wire, scatter into total and residual; wall time, summed over the step's
collectives), medians of the busiest rank, 0 for the other hooks.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook as powersgd
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from sparsgd.comm.launch import LaunchOptions, launch
from sparsgd.comm.stats import PHASES
from sparsgd.comm.worker_env import WorkerContext
from sparsgd.lab.cluster import Cluster, Rate
from sparsgd.lab.placement import lab_options
from sparsgd.sync.ddp_hook import SparseHookState, sparse_allreduce_hook

__all__ = ["VARIANTS", "measure_ddp"]

# wall s and CPU s of each step, collectives per step, each step's seconds per phase
Timing = tuple[list[float], list[float], float, dict[str, list[float]]]

VARIANTS = (
    "allreduce",
    "powersgd",
    "sparse_one_bucket",
    "sparse_many",
    "sparse_many_inline",
    "sparse_model_scope",
)
WARMUP = 4
BATCH = 64
ONE_BUCKET_MB = 1e4  # above any model here: DDP keeps one bucket after its rebuild


def _model(width: int, layers: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        blocks: list[nn.Module] = []
        for _ in range(layers):
            blocks += [nn.Linear(width, width), nn.ReLU()]
        return nn.Sequential(*blocks[:-1])


def _wrap(
    model: nn.Module, name: str, density: float, bucket_mb: float
) -> tuple[DDP, SparseHookState | None]:
    """The DDP of variant ``name`` with its hook registered, and sparsgd's hook state."""
    cap = ONE_BUCKET_MB if name in ("sparse_one_bucket", "powersgd") else bucket_mb
    ddp = DDP(model, bucket_cap_mb=cap)
    if name == "powersgd":
        state = powersgd.PowerSGDState(
            process_group=None, matrix_approximation_rank=1, start_powerSGD_iter=WARMUP - 1
        )
        ddp.register_comm_hook(state, powersgd.powerSGD_hook)
        return ddp, None
    if name != "allreduce":
        scope = "model" if name == "sparse_model_scope" else "bucket"
        overlap = name != "sparse_many_inline"
        hook = SparseHookState(model, "gtopk", density, scope=scope, overlap=overlap)
        ddp.register_comm_hook(hook, sparse_allreduce_hook)
        return ddp, hook
    return ddp, None


def _variant(
    ctx: WorkerContext, name: str, width: int, layers: int, density: float, bucket_mb: float
) -> tuple[Callable[[], None], SparseHookState | None]:
    """(one training step of variant ``name`` on its own model copy, its sparsgd hook state)."""
    model = _model(width, layers)
    ddp, hook = _wrap(model, name, density, bucket_mb)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(ctx.rank)
    x, y = (
        torch.randn(BATCH, width, generator=gen),
        torch.randint(0, width, (BATCH,), generator=gen),
    )

    def step() -> None:
        optimizer.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        optimizer.step()

    return step, hook


def bench_worker(
    ctx: WorkerContext, width: int, layers: int, density: float, bucket_mb: float, repeats: int
) -> dict[str, Timing]:
    """Every variant on this rank: ``name -> (wall seconds of each timed step, CPU seconds of
    this process in each, collectives per step)``. The variants take turns, one step each per
    round, in VARIANTS order on every rank, so that a change of machine load during the run
    falls on all of them alike."""
    variants = {name: _variant(ctx, name, width, layers, density, bucket_mb) for name in VARIANTS}
    for step, _ in variants.values():
        for _ in range(WARMUP):
            step()
    before = {name: 0 if hook is None else hook.calls for name, (_, hook) in variants.items()}
    wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    phases = {name: {phase: [] for phase in PHASES} for name in VARIANTS}
    for _ in range(repeats):
        for name, (step, hook) in variants.items():
            seconds = dict(hook.seconds) if hook is not None else dict.fromkeys(PHASES, 0.0)
            dist.barrier()
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
            for phase in PHASES:
                now = hook.seconds[phase] if hook is not None else 0.0
                phases[name][phase].append(now - seconds[phase])
    calls = {
        name: 0.0 if hook is None else hook.calls - before[name]
        for name, (_, hook) in variants.items()
    }
    return {name: (wall[name], cpu[name], calls[name] / repeats, phases[name]) for name in VARIANTS}


def summarise(per_rank: list[dict[str, Timing]]) -> list[dict[str, Any]]:
    """One row per variant: medians over repeats of the slowest rank's step and of the
    busiest rank's CPU time and phase times, in ms."""
    rows = []
    for name in VARIANTS:
        steps = zip(*(ranks[name][0] for ranks in per_rank), strict=True)
        cpus = zip(*(ranks[name][1] for ranks in per_rank), strict=True)
        row = {
            "variant": name,
            "step_ms": statistics.median(max(step) for step in steps) * 1e3,
            "cpu_ms": statistics.median(max(cpu) for cpu in cpus) * 1e3,
            "collectives_per_step": per_rank[0][name][2],
        }
        for phase in PHASES:
            per_step = zip(*(ranks[name][3][phase] for ranks in per_rank), strict=True)
            row[f"{phase}_ms"] = statistics.median(max(s) for s in per_step) * 1e3
        rows.append(row)
    base = rows[0]["step_ms"]
    for row in rows:
        row["ratio_to_allreduce"] = row["step_ms"] / base
    return rows


def measure_ddp(
    workers: int,
    width: int,
    layers: int,
    density: float,
    bucket_mb: float,
    repeats: int,
    *,
    timeout_s: float = 300.0,
    threads: int = 1,
    rate: Rate | None = None,
) -> list[dict[str, Any]]:
    """Start ``workers`` processes, run :func:`bench_worker` on each, summarise. They talk
    over loopback, or with ``rate`` on a lab of ``workers`` nodes whose links are shaped to
    it (one rank per network namespace, torn down before the rows come back)."""
    args = (width, layers, density, bucket_mb, repeats)
    if rate is None:
        options = LaunchOptions(timeout_s=timeout_s, threads=threads)
        return summarise(launch(bench_worker, workers, args, options, deadline_s=timeout_s))
    if workers < 2:
        raise ValueError(f"workers must be >= 2 on the lab (links join nodes); got {workers}")
    with Cluster(workers, rate) as cluster:
        options = lab_options(cluster, timeout_s, threads)
        return summarise(launch(bench_worker, workers, args, options, deadline_s=timeout_s))
