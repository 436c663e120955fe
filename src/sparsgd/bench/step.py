"""Time one synchronous S-SGD step: compress + apply as a share of forward + backward.

On each of P local ranks (gloo on 127.0.0.1, started by :func:`sparsgd.comm.launch.launch`;
P = 1 by default, so the collective's tree has no rounds and only its local work is timed), a
model of the registry gets a fixed Gaussian mini-batch of its input shape every step:

    fb       = loss(model(x), y).backward()        # (1) forward + backward
    step     = SyncSGD.step(density)               # (2) the whole step of sync/step.py:
             =   compress  (flat g, e + g, select, tree merges, memory update)
             +   comm      (on or waiting for the wire)
             +   apply     (scatter, residual, gradient write-back, optimizer step)

One untimed step, then ``repeats`` timed steps; a row per collective gives the medians in ms
over the slowest rank of each step, and ``overhead = (compress + apply) / fb``, the share the
papers report as compression overhead (docs/algorithms.md, cost model). ``plain_sgd_ms`` is a
plain ``optimizer.step()`` of the same model, timed in the same steps, for scale.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from sparsgd.comm import make_collective
from sparsgd.comm.launch import LaunchOptions, WorkerContext, launch
from sparsgd.compress.memory import make_memory
from sparsgd.models.registry import build_model
from sparsgd.models.spec import ModelSpec
from sparsgd.sync.step import SyncSGD

__all__ = ["IMAGE_SHAPES", "TIMES", "measure_step", "step_worker"]

IMAGE_SHAPES = {"lenet5": (1, 28, 28), "resnet20": (3, 32, 32)}  # model -> (C, H, W) input
TIMES = ("fb_ms", "compress_ms", "comm_ms", "apply_ms", "plain_sgd_ms")
NUM_CLASSES = 10
LR = 0.01  # any small rate: the timing does not depend on it


def step_worker(
    ctx: WorkerContext, model_name: str, collective: str, density: float, batch: int, repeats: int
) -> list[list[float]]:
    """Per timed step: forward+backward, compress, comm, apply, plain-SGD-step seconds."""
    shape = IMAGE_SHAPES[model_name]
    model = build_model(model_name, ModelSpec(input_shape=shape, num_classes=NUM_CLASSES), seed=0)
    params = [p for p in model.parameters() if p.requires_grad]
    numel = sum(p.numel() for p in params)
    optimizer = torch.optim.SGD(params, lr=LR, momentum=0.9)
    memory = make_memory("residual", numel)
    sgd = SyncSGD(params, optimizer, make_collective(collective), memory, ctx.world_size)
    plain = torch.optim.SGD(params, lr=0.0, momentum=0.9)  # lr 0: times the update, moves nothing
    generator = torch.Generator().manual_seed(1000 + ctx.rank)
    x = torch.randn(batch, *shape, generator=generator)  # (batch, C, H, W)
    y = torch.randint(NUM_CLASSES, (batch,), generator=generator)
    rows = []
    for _ in range(repeats + 1):
        optimizer.zero_grad(set_to_none=False)
        start = time.perf_counter()
        nn.functional.cross_entropy(model(x), y).backward()  # (1)
        fb = time.perf_counter() - start
        start = time.perf_counter()
        plain.step()
        plain_s = time.perf_counter() - start
        stats = sgd.step(density)  # (2)
        rows.append([fb, stats.compress_s, stats.comm_s, stats.apply_s, plain_s])
    return rows[1:]  # the first step is the untimed warm-up


def measure_step(
    model_name: str,
    collectives: list[str],
    density: float,
    batch: int,
    repeats: int,
    workers: int = 1,
    timeout_s: float = 600.0,
) -> list[dict[str, float | str]]:
    """One row per collective: median ms of each part over the slowest rank, and the overhead."""
    if model_name not in IMAGE_SHAPES:
        raise ValueError(f"model must be one of {sorted(IMAGE_SHAPES)}; got {model_name!r}")
    rows: list[dict[str, float | str]] = []
    for name in collectives:
        per_rank = launch(
            step_worker,
            workers,
            (model_name, name, density, batch, repeats),
            LaunchOptions(timeout_s=timeout_s, threads=1),
            deadline_s=timeout_s,
        )
        steps = list(zip(*per_rank, strict=True))  # step -> ranks
        row: dict[str, float | str] = {"model": model_name, "collective": name}
        for i, field in enumerate(TIMES):
            row[field] = statistics.median(max(r[i] for r in ranks) for ranks in steps) * 1e3
        row["overhead"] = (float(row["compress_ms"]) + float(row["apply_ms"])) / float(row["fb_ms"])
        rows.append(row)
    return rows
