"""S-SGD with P simulated ranks in one process: the engine's step, the collective simulated.

The real engine (:mod:`sparsgd.sync.trainer`, P gloo processes) and this loop compute the same
thing. Every rank's objects are built as :func:`sparsgd.sync.build.build_parts` builds them
(shard, batch order, model replica, optimizer, memory, schedules, its own torch random stream)
and one step is :mod:`sparsgd.sync.step`'s, with ``collective.reduce`` replaced by its
one-process reference :func:`sparsgd.sim.collectives.simulate`:

    lr_t = lr(t);  rho_t = density(t / spe)                   # (1) the engine's schedules
    for every rank i:
        loss_i = task.loss(model_i, next batch of shard i)    # (2) compute
        p_i    = memory_i.compensate(flat(grad_i))            # (3) p = e + g
    if some p_i is not finite: every rank skips the step      # (4) the collective's check
    R = simulate(collective, [p_0 .. p_{P-1}], rho_t)         # (5) sim/collectives.py
    for every rank i:
        memory_i.update_(R_i.residual, R_i.sent)              # (6)
        grad_i = R_i.total / P;  optimizer_i.step()           # (7) momentum after aggregation
    epoch end or t = T: the P parts of the test set, summed   # (8) the engine's all_reduce

Traffic is each simulated rank's ledger, with the input check the engine pays
(:mod:`sparsgd.comm.base`): a handshake before the first call and, when k changes under a
density schedule, one attempt at the old size that every rank flags, then a new handshake.

Time: the loop's own wall seconds (P ranks one after another), and a *modelled* time of a
P-worker run: per step the mean over ranks of the measured compute and selection-and-update
seconds, plus the alpha-beta aggregation time of :mod:`sparsgd.bench.cost_model` on 1 GbE.

A run stops early only when a test loss is not finite (its parameters are, and stay, broken).
``tests/experiments/test_sync_sim.py`` checks the loop against 3 real ranks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from sparsgd.bench.cost_model import aggregation_seconds
from sparsgd.comm.stats import Ledger
from sparsgd.compress import DensitySchedule, make_memory
from sparsgd.compress.checks import NonFiniteError, check_finite, k_from_density
from sparsgd.data import DatasetBundle, shard, split_size
from sparsgd.models import ModelSpec, build_model
from sparsgd.sim.collectives import TOPK_HEADER_BYTES, simulate
from sparsgd.sim.network_clock import NETWORK_PRESETS
from sparsgd.sync.build import MEMORY_SETTINGS, load_bundle
from sparsgd.sync.config import SyncConfig, check_config
from sparsgd.sync.report import dense_bytes_per_step
from sparsgd.sync.schedule import DENSITY_WARMUPS, LrSchedule, warmup_start_fraction
from sparsgd.worker.batches import SampleBatches, sample_steps_per_epoch
from sparsgd.worker.flat_model import flat_grad, trainable, write_grad_
from sparsgd.worker.seeds import derive_seed, generator_for
from sparsgd.worker.tasks import ClassificationTask

__all__ = ["MODEL_NETWORK", "SIM_METHODS", "run_simulated"]

MODEL_NETWORK = NETWORK_PRESETS["1gbe"]  # the network of the modelled time
SIM_METHODS = ("dense", "topk", "gtopk")  # the methods whose input-check cost is mirrored
# fields of SyncConfig this loop reproduces; NO_EFFECT ones do not change the numbers; any
# other field must keep its default (a field added later is refused until the loop has it)
REPRODUCED = frozenset(
    (
        *("model", "dataset", "data_dir", "hidden_size", "reduced", "method", "density"),
        *("memory", "density_warmup", "density_warmup_kind", "workers", "lr", "warmup_epochs"),
        *("warmup_start", "lr_decay_epochs", "lr_decay_factor", "momentum", "weight_decay"),
        *("batch_size", "epochs", "steps", "seed"),
    )
)
NO_EFFECT = frozenset(
    (
        *("out", "log_every", "checkpoint_every", "keep_checkpoints", "verify_every"),
        *("timeout_s", "progress", "tensorboard", "extra", "bptt", "recipe"),
    )
)


@dataclass
class _Rank:
    """One simulated rank: what build_parts gives it, and its own torch random state."""

    model: nn.Module
    params: list[nn.Parameter]
    optimizer: torch.optim.SGD
    memory: Any
    batches: SampleBatches
    task: ClassificationTask
    rng: Tensor


def _check_simulable(c: SyncConfig) -> None:
    check_config(c)
    defaults = SyncConfig(out=c.out)
    for f in fields(SyncConfig):
        if f.name in REPRODUCED or f.name in NO_EFFECT:
            continue
        if getattr(c, f.name) != getattr(defaults, f.name):
            raise ValueError(
                f"the simulated-ranks loop does not reproduce {f.name}={getattr(c, f.name)!r} "
                f"(default {getattr(defaults, f.name)!r}); run it on the real engine"
            )
    if c.method not in SIM_METHODS:
        raise ValueError(f"method must be one of {SIM_METHODS} here; got {c.method!r}")
    if c.is_language:
        raise ValueError(f"the simulated-ranks loop trains classifiers; got model {c.model!r}")


def _build_ranks(c: SyncConfig, bundle: DatasetBundle) -> tuple[list[_Rank], int]:
    """Every rank's objects as build_parts makes them; the steps per epoch."""
    spec = ModelSpec.of(bundle, reduced=c.reduced, hidden_size=c.hidden_size)
    momentum = 0.0 if c.memory == "dgc" else c.momentum
    ranks, spe = [], 0
    for rank in range(c.workers):
        mine = shard(bundle.train, rank, c.workers, c.seed)
        spe = sample_steps_per_epoch(split_size(mine), c.batch_size)
        order = generator_for(c.seed, "data-order", rank)
        model = build_model(c.model, spec, seed=c.seed)
        params = trainable(model)
        numel = sum(p.numel() for p in params)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(c.seed, "torch", rank))
            rng = torch.get_rng_state()
        ranks.append(
            _Rank(
                model,
                params,
                torch.optim.SGD(params, lr=c.lr, momentum=momentum, weight_decay=c.weight_decay),
                make_memory(c.memory, numel, **MEMORY_SETTINGS[c.memory](c)),
                SampleBatches(mine, c.batch_size, spe, order),
                ClassificationTask(bundle.test, rank, c.workers, torch.device("cpu")),
                rng,
            )
        )
    return ranks, spe


class _Traffic:
    """Bytes each rank sent, with the input check's handshakes and flagged attempts."""

    def __init__(self, collective: str, workers: int) -> None:
        self.collective, self.workers = collective, workers
        self.sent = [0] * workers
        self.agreed: tuple[int, float] | None = None  # (k, density) of the agreed signature

    def reduce(self, ps: list[Tensor], density: float) -> list[Any]:
        """(5) the simulated collective, its bytes counted as the engine's ranks count them."""
        k = k_from_density(density, ps[0].numel())
        if self.agreed is not None and self.agreed[0] != k:
            self._count(self._flagged_attempt(ps, self.agreed[1]))
        first = self.agreed is None or self.agreed[0] != k
        reduced = simulate(self.collective, ps, density, first_call=first)
        self._count([r.stats.bytes_sent for r in reduced])
        self.agreed = (k, density)
        return reduced

    def _flagged_attempt(self, ps: list[Tensor], old_density: float) -> list[int]:
        """What a call at the old signature sends before every rank learns of the change."""
        if self.collective == "topk_allgather":  # the length headers carry the flags
            ledger = Ledger()
            ledger.all_gather(TOPK_HEADER_BYTES, self.workers)
            return [ledger.stats.bytes_sent] * self.workers
        # gtopk: the whole tree and broadcast at the old size (placeholders from flagged ranks)
        attempt = simulate(self.collective, ps, old_density, first_call=False)
        return [r.stats.bytes_sent for r in attempt]

    def _count(self, per_rank: list[int]) -> None:
        self.sent = [a + b for a, b in zip(self.sent, per_rank, strict=True)]


def _compute(rank: _Rank) -> tuple[float, Tensor | None, float]:
    """(2)-(3) for one rank: its loss, p (None when g is not finite), compute seconds."""
    if rank.batches.position >= rank.batches.steps_per_epoch:
        rank.batches.start_epoch()
        rank.task.start_epoch()
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(rank.rng)
        rank.model.train()
        rank.optimizer.zero_grad(set_to_none=True)
        loss = rank.task.loss(rank.model, rank.batches.next_batch())
        loss.backward()
        rank.rng = torch.get_rng_state()
    seconds = time.perf_counter() - t0
    g = flat_grad(rank.params)
    if not _finite(g):  # a NaN g never reaches the memory
        return float(loss.detach()), None, seconds
    return float(loss.detach()), rank.memory.compensate(g), seconds


def _finite(x: Tensor) -> bool:
    try:
        check_finite(x)
    except NonFiniteError:
        return False
    return True


@dataclass
class _Tally:
    """Sums over some steps (the engine's Tally, the P ranks together)."""

    loss_sum: float = 0.0
    loss_count: int = 0  # rank-steps that were applied
    skipped: int = 0
    compute_s: float = 0.0  # mean over ranks, summed over steps
    modelled_s: float = 0.0
    kd: float = 0.0  # sum over applied steps of k_t / d: entries each rank sent per weight

    @property
    def train_loss(self) -> float | None:
        return self.loss_sum / self.loss_count if self.loss_count else None


def _step(ranks: list[_Rank], traffic: _Traffic, lr: float, rho: float, tallies) -> None:
    """One step of every rank, (2)-(7), counted in every tally of ``tallies``."""
    world = len(ranks)
    for rank in ranks:
        for group in rank.optimizer.param_groups:
            group["lr"] = lr  # (1)
    losses, ps, seconds = zip(*(_compute(rank) for rank in ranks), strict=True)
    compute = sum(seconds) / world
    if any(p is None for p in ps):  # (4)
        for rank in ranks:
            rank.optimizer.zero_grad(set_to_none=True)
        for tally in tallies:
            tally.skipped += 1
            tally.compute_s += compute
        return
    t0 = time.perf_counter()
    reduced = traffic.reduce(list(ps), rho)  # (5)
    for rank, r in zip(ranks, reduced, strict=True):
        rank.memory.update_(r.residual, r.sent)  # (6)
        write_grad_(rank.params, r.total / world)  # (7)
        rank.optimizer.step()
    numel = ps[0].numel()
    local = (time.perf_counter() - t0) / world  # selection, merges and updates, per rank
    wire = aggregation_seconds(traffic.collective, world, numel, rho, MODEL_NETWORK)
    for tally in tallies:
        tally.loss_sum += sum(losses)
        tally.loss_count += world
        tally.compute_s += compute
        tally.modelled_s += compute + local + wire
        tally.kd += k_from_density(rho, numel) / numel


@torch.no_grad()
def _evaluate(ranks: list[_Rank]) -> dict[str, float]:
    """(8) every rank scores its part of the test set with rank 0's buffers; sums of all."""
    first = dict(ranks[0].model.named_buffers())
    for rank in ranks[1:]:
        for name, buffer in rank.model.named_buffers():
            buffer.copy_(first[name])
    total = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
    for rank in ranks:
        rank.model.eval()
        total += torch.tensor(rank.task.scores(rank.model), dtype=torch.float64)
        rank.model.train()
    loss_sum, correct, count = total.tolist()
    return ranks[0].task.metrics(loss_sum, round(correct), round(count))


def run_simulated(c: SyncConfig, bundle: DatasetBundle | None = None) -> dict[str, Any]:
    """Train ``c`` with P simulated ranks: ``{"records", "summary", "diverged"}``.

    ``records``: one per evaluation (epoch ends and the last step) with the test metrics, the
    epoch's train loss, mean bytes sent per rank so far, sum of k/d so far, modelled and wall
    seconds so far. ``summary``: the engine's summary.json fields this loop knows.
    ``diverged``: why the run stopped early (a non-finite test loss), else None.
    """
    _check_simulable(c)
    bundle = load_bundle(c) if bundle is None else bundle
    ranks, spe = _build_ranks(c, bundle)
    total = c.steps if c.steps is not None else math.ceil(c.epochs * spe)
    start = warmup_start_fraction(c.warmup_start, c.workers)
    lr = LrSchedule(c.lr, spe, c.warmup_epochs, c.lr_decay_epochs, c.lr_decay_factor, start)
    density = DensitySchedule(c.density, c.density_warmup, DENSITY_WARMUPS[c.density_warmup_kind])
    traffic = _Traffic(c.collective, c.workers)
    run, epoch, records, diverged, metrics, done = _Tally(), _Tally(), [], None, {}, 0
    started = time.perf_counter()
    while done < total and diverged is None:
        epoch = _Tally() if done % spe == 0 else epoch
        _step(ranks, traffic, lr.lr(done), density.density(done / spe), (run, epoch))
        done += 1
        if done % spe == 0 or done == total:
            metrics = _evaluate(ranks)
            records.append(
                {
                    "epoch": done / spe,
                    "step": done,
                    **metrics,
                    "train_loss": epoch.train_loss,
                    "bytes_sent": sum(traffic.sent) / len(traffic.sent),
                    "steps_k_over_d": run.kd,
                    "modelled_s": run.modelled_s,
                    "wall_s": time.perf_counter() - started,
                }
            )
            if not math.isfinite(metrics["test_loss"]):
                diverged = f"test loss {metrics['test_loss']} is not finite at step {done}"
    numel = sum(p.numel() for p in ranks[0].params)
    applied = run.loss_count // c.workers
    summary = {
        "final_test_accuracy": metrics["test_accuracy"],
        "final_test_loss": metrics["test_loss"],
        "steps": done,
        "epochs": done / spe,
        "steps_per_epoch": spe,
        "numel": numel,
        "num_classes": bundle.num_classes,
        "bytes_sent_per_rank": list(traffic.sent),
        "dense_bytes_per_rank": applied * dense_bytes_per_step(numel, c.workers),
        "skipped_nonfinite_steps": run.skipped,
        "wall_seconds": time.perf_counter() - started,
        "seconds_compute": run.compute_s,
        "modelled_seconds": run.modelled_s,
    }
    return {"records": records, "summary": summary, "diverged": diverged}
