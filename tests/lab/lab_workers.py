"""Worker functions of the lab tests (module level, so every rank's process finds them)."""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

from sparsgd.comm import COLLECTIVES, make_collective
from sparsgd.comm.launch import WorkerContext

NUMEL, DENSITY, STEPS = 1_000_000, 0.001, 2


def gradient(rank: int, step: int) -> torch.Tensor:
    return torch.randn(NUMEL, generator=torch.Generator().manual_seed(7919 * rank + step))


def every_collective(ctx: WorkerContext) -> dict:
    """Per collective, STEPS error-feedback steps (copies of what each returned), then the
    seconds of one bare all_reduce of NUMEL floats."""
    out: dict = {}
    for name in COLLECTIVES:
        collective, residual, steps = make_collective(name), torch.zeros(NUMEL), []
        for step in range(STEPS):
            p = residual + gradient(ctx.rank, step)
            reduced = collective.reduce(p, DENSITY)
            steps.append(
                {
                    "total": reduced.total.clone(),
                    "residual": reduced.residual.clone(),
                    "sent": reduced.sent.clone(),
                    "stats": reduced.stats.as_dict(),
                }
            )
            residual = steps[-1]["residual"]
        out[name] = steps
    buffer = torch.ones(NUMEL)
    dist.barrier()
    start = time.perf_counter()
    dist.all_reduce(buffer)
    out["plain_all_reduce_s"] = time.perf_counter() - start
    return out
