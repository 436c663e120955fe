"""Everything one rank trains with, built from the config: data, model, optimizer, S-SGD step.

    bundle  = load_dataset(dataset)             # the same on every rank
    shard   = shard(bundle.train, rank, P)       # this rank's disjoint part (data/shard.py)
    model   = build_model(name, spec, seed)      # bit-identical on every rank
                                                 # (or a user's: worker/user_problem.py)
    memory  = make_memory(memory, d)             # error feedback (dgc: momentum m inside)
    coll    = make_collective(METHODS[method], compressor=selection)
    sgd     = SyncSGD(params, SGD(params, lr, momentum, weight_decay), coll, memory, P)
    lr      = LrSchedule(..., warmup_start resolved with this run's P)    # sync/schedule.py
    density = DensitySchedule(rho, density_warmup, DENSITY_WARMUPS[kind])

With DGC momentum correction the momentum lives in the memory (u = m u + g, before
compression) and the optimizer runs without momentum; otherwise the optimizer's momentum and
weight decay act on the averaged gradient, after aggregation (docs/algorithms.md, error feedback).
The number of steps is fixed by ``--steps``, or by ``ceil(epochs * steps_per_epoch)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sparsgd.comm import make_collective
from sparsgd.comm.launch import WorkerContext
from sparsgd.compress import Compressor, DensitySchedule, make_compressor, make_memory
from sparsgd.data import DatasetBundle, load_dataset, shard, split_size
from sparsgd.models import ModelSpec, build_model
from sparsgd.sync.config import SyncConfig
from sparsgd.sync.schedule import DENSITY_WARMUPS, LrSchedule, warmup_start_fraction
from sparsgd.sync.step import SyncSGD
from sparsgd.worker.batches import (
    SampleBatches,
    StreamBatches,
    sample_steps_per_epoch,
    stream_steps_per_epoch,
)
from sparsgd.worker.flat_model import trainable
from sparsgd.worker.seeds import derive_seed, generator_for
from sparsgd.worker.tasks import ClassificationTask, LanguageTask
from sparsgd.worker.user_problem import UserProblem

__all__ = ["MEMORY_SETTINGS", "SELECTION_SETTINGS", "Parts", "build_parts", "load_bundle"]


@dataclass
class Parts:
    """One rank's training objects (built once, restored from a checkpoint when resuming)."""

    bundle: DatasetBundle
    model: nn.Module
    sgd: SyncSGD
    compressor: Compressor | None
    task: ClassificationTask | LanguageTask
    batches: SampleBatches | StreamBatches
    lr: LrSchedule
    density: DensitySchedule
    steps_per_epoch: int
    total_steps: int

    @property
    def numel(self) -> int:
        return self.sgd.numel


def load_bundle(c: SyncConfig) -> DatasetBundle:
    """The configured data set (only the options it reads are passed on)."""
    if c.max_tokens is not None:
        return load_dataset(c.dataset, c.data_dir, max_tokens=c.max_tokens, seed=c.seed)
    if c.data_file is not None:
        return load_dataset(c.dataset, c.data_dir, data_file=c.data_file, seed=c.seed)
    return load_dataset(c.dataset, c.data_dir, seed=c.seed)


# settings of topk's local selection, per compressor (randomk and sampled draw: seeded per rank)
SELECTION_SETTINGS: dict[str, Callable[[SyncConfig, int], dict[str, Any]]] = {
    "topk": lambda c, rank: {},
    "randomk": lambda c, rank: {"seed": derive_seed(c.seed, "selection", rank)},
    "sampled": lambda c, rank: {"seed": derive_seed(c.seed, "selection", rank)},
    "threshold": lambda c, rank: {"threshold": c.threshold},
}
# settings of each memory: DGC's momentum correction takes the momentum factor m
MEMORY_SETTINGS: dict[str, Callable[[SyncConfig], dict[str, Any]]] = {
    "none": lambda c: {},
    "residual": lambda c: {},
    "dgc": lambda c: {"momentum": c.momentum},
}


def _selection(c: SyncConfig, rank: int) -> Compressor | None:
    """topk's local selection (None: exact top-k)."""
    if c.compressor is None:
        return None
    return make_compressor(c.compressor, **SELECTION_SETTINGS[c.compressor](c, rank))


def _data(c: SyncConfig, bundle: DatasetBundle, ctx: WorkerContext):
    """(task, batches, steps per epoch) for this rank."""
    mine = shard(bundle.train, ctx.rank, ctx.world_size, c.seed)  # equal sizes on every rank
    if bundle.task == "language":
        steps = stream_steps_per_epoch(split_size(mine), c.batch_size, c.bptt)
        batches = StreamBatches(mine, c.batch_size, c.bptt, steps)
        task = LanguageTask(bundle.test, ctx.rank, ctx.world_size, c.bptt, ctx.device)
        return task, batches, steps
    steps = sample_steps_per_epoch(split_size(mine), c.batch_size)
    order = generator_for(c.seed, "data-order", ctx.rank)
    batches = SampleBatches(mine, c.batch_size, steps, order)
    return ClassificationTask(bundle.test, ctx.rank, ctx.world_size, ctx.device), batches, steps


def build_parts(c: SyncConfig, ctx: WorkerContext, problem: UserProblem | None = None) -> Parts:
    """Build this rank's objects; every rank gets the same model and schedules.

    ``problem``: a user's own model and data (sparsgd.api.train), in place of the config's
    ``model`` and ``dataset``.
    """
    bundle = load_bundle(c) if problem is None else problem.load()
    task, batches, steps_per_epoch = _data(c, bundle, ctx)
    spec = ModelSpec.of(bundle, reduced=c.reduced, hidden_size=c.hidden_size)
    model = build_model(c.model, spec, seed=c.seed) if problem is None else problem.module()
    model = model.to(ctx.device)
    params = trainable(model)
    numel = sum(p.numel() for p in params)
    momentum = 0.0 if c.memory == "dgc" else c.momentum  # dgc: momentum before compression
    optimizer = torch.optim.SGD(params, lr=c.lr, momentum=momentum, weight_decay=c.weight_decay)
    compressor = _selection(c, ctx.rank)
    collective = make_collective(c.collective, None, compressor)
    memory = make_memory(c.memory, numel, **MEMORY_SETTINGS[c.memory](c))
    sgd = SyncSGD(params, optimizer, collective, memory, ctx.world_size, c.clip)
    total = c.steps if c.steps is not None else math.ceil(c.epochs * steps_per_epoch)
    start = warmup_start_fraction(c.warmup_start, ctx.world_size)  # "1/P": P known only here
    lr = LrSchedule(
        c.lr, steps_per_epoch, c.warmup_epochs, c.lr_decay_epochs, c.lr_decay_factor, start
    )
    density = DensitySchedule(c.density, c.density_warmup, DENSITY_WARMUPS[c.density_warmup_kind])
    return Parts(bundle, model, sgd, compressor, task, batches, lr, density, steps_per_epoch, total)
