"""S-SGD with P simulated ranks in one process under a recipe, measuring delta at every step.

The IJCAI 2019 measurement (docs/algorithms.md section 3). The run is a resolved
:class:`~sparsgd.sync.config.SyncConfig` (after its recipe, :mod:`sparsgd.sync.recipes`): its
lr warm-up, density warm-up, momentum and weight decay are the engine's
(:mod:`sparsgd.sync.schedule`). At step t (0-based, ``spe`` steps per epoch), with one model
(every rank holds the same parameters) and rank i's residual e_i:

    lr_t = lr(t);  rho_t = density(t / spe);  k_t = k(rho_t, d)   # (1) the schedules
    g_i   = grad of rank i's mini-batch                       # (2) i = 0..P-1, own shard
    p_i   = e_i + g_i                                         # (3) error feedback
    R     = simulate(collective, [p_0..p_{P-1}], rho_t)       # (4) the collective, P ranks
    x     = (1/P) sum_i p_i                                   # (5) average accumulated gradient
    u     = R.total / P                                       #     what the step applies
    delta = ||x - u||^2 / ((1 - k_t/d) ||x||^2)               #     E||x - randk(x)||^2 below
    delta_topk = ||x - topk(x)||^2 / ((1 - k_t/d) ||x||^2)    #     exact top-k of x, for scale
    e_i  <- R_i.residual;  grad = u;  SGD step at lr_t        # (6) momentum after aggregation

delta < 1 means the method's update is closer to x than a random-k update is on average.
delta_topk <= 1 always (top-k contraction); for Top-k S-SGD u holds up to k P entries.
(k is :func:`sparsgd.compress.checks.k_from_density`.) A non-finite loss or gradient stops
the run: it is reported diverged, never measured further.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import TensorDataset

from sparsgd.compress import DensitySchedule
from sparsgd.compress.checks import k_from_density
from sparsgd.compress.topk import topk_indices
from sparsgd.data import DatasetBundle, shard
from sparsgd.models import ModelSpec, build_model
from sparsgd.sim.collectives import simulate
from sparsgd.sync.config import SyncConfig
from sparsgd.sync.schedule import DENSITY_WARMUPS, LrSchedule, warmup_start_fraction
from sparsgd.worker.flat_model import flat_grad, trainable, write_grad_

__all__ = ["DELTA_METHODS", "DeltaTrace", "run_delta"]

EVAL_BATCH = 1000  # test samples per forward pass (memory only)
DELTA_METHODS = ("gtopk", "topk")  # SyncConfig methods whose aggregate delta measures


@dataclass
class DeltaTrace:
    """What a run measured: every step's record, one record per epoch, why it stopped."""

    numel: int
    k: int  # at the target density
    steps_per_epoch: int
    steps: list[dict[str, float]] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    diverged: str | None = None


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


def _check(c: SyncConfig) -> int:
    """The whole number of epochs of ``c``; ValueError for what this loop does not run."""
    if c.method not in DELTA_METHODS:
        raise ValueError(f"method must be one of {DELTA_METHODS}; got {c.method!r}")
    if c.memory != "residual":
        raise ValueError(
            f"memory must be 'residual' (delta is defined on p = e + g); got {c.memory!r}"
        )
    if c.steps is not None or c.epochs != int(c.epochs) or c.epochs < 1:
        raise ValueError(
            f"epochs must be a whole number >= 1 and steps None (delta is averaged per epoch); "
            f"got epochs={c.epochs}, steps={c.steps}"
        )
    return int(c.epochs)


def run_delta(
    c: SyncConfig, bundle: DatasetBundle, max_steps_per_epoch: int | None = None
) -> DeltaTrace:
    """Train ``c`` (steps (1)-(6) of the module docstring) and return what it measured.

    ``max_steps_per_epoch`` caps the steps of an epoch (smoke sizes); None: the whole shard.
    """
    epochs = _check(c)
    model = build_model(
        c.model, ModelSpec.of(bundle, reduced=c.reduced, hidden_size=c.hidden_size), seed=c.seed
    )
    params = trainable(model)
    optimizer = torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    d = sum(p.numel() for p in params)
    shards = _Shards(bundle, c.workers, c.batch_size, c.seed)
    spe = min(shards.steps, max_steps_per_epoch or shards.steps)
    start = warmup_start_fraction(c.warmup_start, c.workers)
    lr = LrSchedule(c.lr, spe, c.warmup_epochs, c.lr_decay_epochs, c.lr_decay_factor, start)
    density = DensitySchedule(c.density, c.density_warmup, DENSITY_WARMUPS[c.density_warmup_kind])
    residuals = [torch.zeros(d) for _ in range(c.workers)]
    trace = DeltaTrace(d, k_from_density(c.density, d), spe)
    for epoch in range(epochs):
        shards.start_epoch()
        for step in range(spe):
            t = epoch * spe + step
            for group in optimizer.param_groups:
                group["lr"] = lr.lr(t)  # (1)
            rho = density.density(t / spe)
            record = _step(model, optimizer, params, shards, step, residuals, c, rho)
            if record is None:
                trace.diverged = f"non-finite loss or gradient at step {t + 1}"
                return trace
            record.update(epoch=epoch + (step + 1) / spe, step=t + 1, density=rho, lr=lr.lr(t))
            trace.steps.append(record)
        trace.epochs.append(_epoch_record(epoch + 1, trace.steps[-spe:], model, bundle))
    return trace


def _epoch_record(epoch: int, window: list[dict[str, float]], model, bundle) -> dict[str, float]:
    deltas = [r["delta"] for r in window]
    return {
        "epoch": epoch,
        "test_accuracy": _accuracy(model, bundle.test),
        "mean_delta": sum(deltas) / len(deltas),
        "max_delta": max(deltas),
        "mean_delta_topk": sum(r["delta_topk"] for r in window) / len(window),
        "density": window[0]["density"],  # constant over an epoch under whole-epoch warm-ups
    }


def _step(model, optimizer, params, shards, step, residuals, c, rho) -> dict[str, Any] | None:
    """(2)-(6) for every rank; None when a loss or gradient is not finite."""
    ps, losses = [], []
    for rank in range(c.workers):
        optimizer.zero_grad(set_to_none=True)
        inputs, targets = shards.batch_of(rank, step)
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()  # (2)
        g = flat_grad(params)
        if not (math.isfinite(float(loss.detach())) and bool(torch.isfinite(g).all())):
            return None
        losses.append(float(loss.detach()))
        ps.append(residuals[rank] + g)  # (3)
    reduced = simulate(c.collective, ps, rho)  # (4)
    x = torch.stack(ps).mean(dim=0)  # (5) (d,)
    u = reduced[0].total / c.workers
    k = k_from_density(rho, x.numel())
    record = {
        "loss": sum(losses) / len(losses),
        "delta": _ratio(x, u, k),
        "delta_topk": _ratio(x, _topk_of(x, k), k),
    }
    for rank, r in enumerate(reduced):  # (6)
        residuals[rank] = r.residual
    write_grad_(params, u)
    optimizer.step()
    return record
