"""S-SGD with P simulated ranks in one process, measuring delta at every iteration.

The IJCAI 2019 measurement (docs/algorithms.md section 3). At step t, with one model (every rank
holds the same parameters) and rank i's residual e_i:

    g_i   = grad of rank i's mini-batch                       # (1) i = 0..P-1, own shard
    p_i   = e_i + g_i                                         # (2) error feedback
    R     = simulate(method, [p_0..p_{P-1}], rho)             # (3) the collective, P ranks
    x     = (1/P) sum_i p_i                                   # (4) average accumulated gradient
    u     = R.total / P                                       #     what the step applies
    delta = ||x - u||^2 / ((1 - k/d) ||x||^2)                 #     E||x - randk(x)||^2 below
    delta_topk = ||x - topk(x)||^2 / ((1 - k/d) ||x||^2)      #     exact top-k of x, for scale
    e_i  <- R_i.residual;  grad = u;  SGD step                # (5) momentum after aggregation

delta < 1 means the method's update is closer to x than a random-k update is on average.
delta_topk <= 1 always (top-k contraction); for ``topk_allgather`` u holds up to kP entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import TensorDataset

from sparsgd.compress.checks import k_from_density
from sparsgd.compress.topk import topk_indices
from sparsgd.data import DatasetBundle, shard
from sparsgd.models import ModelSpec, build_model
from sparsgd.runs import RunDir
from sparsgd.sim.collectives import simulate
from sparsgd.worker.flat_model import flat_grad, trainable, write_grad_

__all__ = ["DeltaRun", "DeltaSettings", "run_delta"]

EVAL_BATCH = 1000  # test samples per forward pass (memory only)


@dataclass(frozen=True)
class DeltaRun:
    """One training run whose delta is measured."""

    model: str
    workers: int
    method: str  # "gtopk" | "topk_allgather" (a collective of sim.collectives)

    @property
    def name(self) -> str:
        return f"{self.model}-P{self.workers}-{self.method}"


@dataclass(frozen=True)
class DeltaSettings:
    """Training settings shared by every run of the experiment."""

    density: float
    lr: float
    momentum: float
    batch_size: int
    epochs: int
    max_steps_per_epoch: int | None  # None: the whole shard every epoch


def _ratio(x: Tensor, u: Tensor, k: int) -> float:
    """||x - u||^2 / ((1 - k/d) ||x||^2); 0 when x = 0 (nothing to approximate)."""
    d = x.numel()
    expected_randk = (1 - k / d) * float(torch.dot(x, x))
    if expected_randk == 0.0:
        return 0.0
    diff = x - u
    return float(torch.dot(diff, diff)) / expected_randk


def _topk_of(x: Tensor, k: int) -> Tensor:
    out = torch.zeros_like(x)
    idx = topk_indices(x, k)
    out[idx] = x[idx]
    return out


@torch.no_grad()
def _accuracy(model: torch.nn.Module, test: TensorDataset) -> float:
    model.eval()
    x, y = test.tensors
    correct = 0
    for start in range(0, len(y), EVAL_BATCH):
        logits = model(x[start : start + EVAL_BATCH])  # (b, C)
        correct += int((logits.argmax(dim=1) == y[start : start + EVAL_BATCH]).sum())
    model.train()
    return correct / len(y)


class _Shards:
    """Every rank's shard and its own shuffling generator (seeded per rank)."""

    def __init__(self, bundle: DatasetBundle, workers: int, batch: int, seed: int) -> None:
        self.parts = [shard(bundle.train, r, workers, seed).tensors for r in range(workers)]
        self.gens = [torch.Generator().manual_seed(seed * 1000 + r) for r in range(workers)]
        self.batch = batch
        self.steps = len(self.parts[0][1]) // batch
        if self.steps < 1:
            raise ValueError(
                f"batch_size={batch} is larger than each of the {workers} shards "
                f"({len(self.parts[0][1])} samples); lower batch_size or workers"
            )
        self.orders: list[Tensor] = []

    def start_epoch(self) -> None:
        self.orders = [
            torch.randperm(len(y), generator=g)
            for (_, y), g in zip(self.parts, self.gens, strict=True)
        ]

    def batch_of(self, rank: int, step: int) -> tuple[Tensor, Tensor]:
        x, y = self.parts[rank]
        idx = self.orders[rank][step * self.batch : (step + 1) * self.batch]
        return x[idx], y[idx]


def run_delta(
    run: DeltaRun, s: DeltaSettings, bundle: DatasetBundle, seed: int, folder: str
) -> dict[str, Any]:
    """Train ``run`` and return its per-step and per-epoch records (also logged in ``folder``)."""
    model = build_model(run.model, ModelSpec.of(bundle), seed=seed)
    params = trainable(model)
    optimizer = torch.optim.SGD(params, lr=s.lr, momentum=s.momentum)
    d = sum(p.numel() for p in params)
    k = k_from_density(s.density, d)
    shards = _Shards(bundle, run.workers, s.batch_size, seed)
    steps = min(shards.steps, s.max_steps_per_epoch or shards.steps)
    residuals = [torch.zeros(d) for _ in range(run.workers)]
    records, epochs = [], []
    with RunDir(folder, overwrite=True) as log:
        log.write_config({"run": run.name, "seed": seed, "numel": d, "k": k, **s.__dict__})
        for epoch in range(s.epochs):
            shards.start_epoch()
            for step in range(steps):
                record = _step(model, optimizer, params, shards, step, residuals, run, s, k)
                record.update(epoch=epoch + (step + 1) / steps, step=epoch * steps + step + 1)
                records.append(record)
                log.log({"kind": "step", **record})
            accuracy = _accuracy(model, bundle.test)
            window = [r["delta"] for r in records[-steps:]]
            epochs.append(
                {
                    "epoch": epoch + 1,
                    "test_accuracy": accuracy,
                    "mean_delta": sum(window) / len(window),
                    "max_delta": max(window),
                }
            )
            log.log({"kind": "epoch", **epochs[-1]})
        log.write_summary({"epochs": epochs, "numel": d, "k": k})
    return {"steps": records, "epochs": epochs, "numel": d, "k": k}


def _step(model, optimizer, params, shards, step, residuals, run, s, k) -> dict[str, float]:
    ps, losses = [], []
    for rank in range(run.workers):
        optimizer.zero_grad(set_to_none=True)
        inputs, targets = shards.batch_of(rank, step)
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()  # (1)
        losses.append(float(loss.detach()))
        ps.append(residuals[rank] + flat_grad(params))  # (2)
    reduced = simulate(run.method, ps, s.density)  # (3)
    x = torch.stack(ps).mean(dim=0)  # (4) (d,)
    u = reduced[0].total / run.workers
    record = {
        "loss": sum(losses) / len(losses),
        "delta": _ratio(x, u, k),
        "delta_topk": _ratio(x, _topk_of(x, k), k),
    }
    for rank, r in enumerate(reduced):  # (5)
        residuals[rank] = r.residual
    write_grad_(params, u)
    optimizer.step()
    return record
