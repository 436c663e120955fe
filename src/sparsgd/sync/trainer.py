"""The training loop of one rank of synchronous data-parallel SGD (S-SGD).

    for step t = s0 .. T-1:                           # s0 > 0 when resuming
        new epoch?  -> reshuffle this rank's shard, reset the LSTM state
        lr_t  = LrSchedule.lr(t);  rho_t = DensitySchedule.density(t / steps_per_epoch)
        loss  = task.loss(model, next batch);  loss.backward()        # compute
        SyncSGD.step(rho_t)                                           # compress, communicate,
                                                                      # apply (sync/step.py)
        every --log-every steps and at epoch ends:  one "step" record
        at epoch ends:  evaluate on the test set, one "epoch" record
        at T, when it is no epoch end:  the same evaluation as a "final" record
        at epoch ends (or every --checkpoint-every steps) and at T:  checkpoint
    summary.json

Rank 0 writes the run folder; every rank takes part in the few small collectives that build
a record (all-gather of the tallies, all-reduce of the test scores), so all ranks see the same
numbers. Log records never carry wall-clock-dependent values other than the ``time_*`` and
``wall_s`` fields, so a resumed run's records equal the uninterrupted run's in every other field.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from sparsgd.comm.launch import WorkerContext
from sparsgd.runs import RunDir
from sparsgd.runs.tensorboard import TensorBoardLog
from sparsgd.sync.build import Parts, build_parts
from sparsgd.sync.checkpoint import collect_checkpoint, restore_checkpoint
from sparsgd.sync.config import SyncConfig, config_from_dict
from sparsgd.sync.replicas import broadcast_buffers_, check_replicas
from sparsgd.sync.report import (
    Tally,
    build_summary,
    epoch_line,
    gather_tallies,
    tally_record,
    totals_record,
)
from sparsgd.sync.state_wire import broadcast_state
from sparsgd.worker.seeds import derive_seed
from sparsgd.worker.user_problem import UserProblem

__all__ = ["TrainJob", "Trainer", "train_worker"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainJob:
    """What every worker receives: the resolved config, whether to resume its folder, and the
    user's own model and data when they replace the config's (sparsgd.api.train)."""

    config: SyncConfig
    resume: bool
    problem: UserProblem | None = None


def train_worker(ctx: WorkerContext, job: TrainJob) -> None:
    """Entry point of every rank (started by ``comm.launch`` or by torchrun)."""
    started = time.perf_counter()
    # rank 0's config is the run's config; it travels as JSON, never as a pickle
    sent = {"config": job.config.to_dict(), "resume": job.resume} if ctx.rank == 0 else None
    shared = broadcast_state(sent, 0, ctx.device)
    # the user's own model and data (sparsgd.api) reach every spawned rank in its job file
    job = TrainJob(config_from_dict(shared["config"]), bool(shared["resume"]), job.problem)
    torch.manual_seed(derive_seed(job.config.seed, "torch", ctx.rank))  # dropout draws here
    parts = build_parts(job.config, ctx, job.problem)
    keep = job.config.keep_checkpoints
    run = RunDir(job.config.out, resume=True, keep_checkpoints=keep) if ctx.rank == 0 else None
    try:
        Trainer(job.config, ctx, parts, run, started).fit(job.resume)
    finally:
        if run is not None:
            run.close()


class Trainer:
    """One rank's loop (module docstring); rank 0 also writes the run folder."""

    def __init__(
        self,
        config: SyncConfig,
        ctx: WorkerContext,
        parts: Parts,
        run: RunDir | None,
        started: float,
    ) -> None:
        self.c, self.ctx, self.p, self.run = config, ctx, parts, run
        self.started = started
        self.tallies = {"run": Tally(), "epoch": Tally(), "window": Tally()}
        self.step = 0
        self.wall_before = 0.0  # seconds of earlier segments of a resumed run
        self.train_seconds = 0.0  # in _train_step, this segment (no evaluation, no checkpoint)
        self.metrics: dict[str, float] = {}
        self.tensorboard = None
        if run is not None and config.tensorboard:
            self.tensorboard = TensorBoardLog(run.tensorboard_dir)

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, resume: bool) -> None:
        if resume:
            self._resume()
        else:
            self._record({"kind": "start", "step": 0, **self._describe()})
        if self.step >= self.p.total_steps:
            raise ValueError(
                f"the run already took {self.step} of its {self.p.total_steps} steps; "
                "pass a larger --steps or --epochs to continue it"
            )
        bar = self._progress_bar()
        while self.step < self.p.total_steps:
            t0 = time.perf_counter()
            loss = self._train_step()
            self.train_seconds += time.perf_counter() - t0
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self._after_step()
        bar.close()
        self._finish()

    def _train_step(self) -> float:
        p = self.p
        if p.batches.position >= p.steps_per_epoch:
            p.batches.start_epoch()
            p.task.start_epoch()
            self.tallies["epoch"] = Tally()
        for group in p.sgd.optimizer.param_groups:
            group["lr"] = p.lr.lr(self.step)
        density = p.density.density(self.step / p.steps_per_epoch)
        t0 = time.perf_counter()
        p.model.train()
        p.sgd.optimizer.zero_grad(set_to_none=True)
        loss = p.task.loss(p.model, p.batches.next_batch())
        loss.backward()
        loss_value = float(loss.detach())  # waits for the device: compute time is complete
        compute_s = time.perf_counter() - t0
        stats = p.sgd.step(density)
        for tally in self.tallies.values():
            tally.add(loss_value, compute_s, stats)
        self.step += 1
        return loss_value

    def _after_step(self) -> None:
        spe, step = self.p.steps_per_epoch, self.step
        end_of_epoch = step % spe == 0
        last = step == self.p.total_steps
        if step % self.c.log_every == 0 or end_of_epoch:
            self._log_window()
        if self.c.verify_every and step % self.c.verify_every == 0:
            check_replicas(self.p.model, step)
        if end_of_epoch or last:
            self._evaluate("epoch" if end_of_epoch else "final")
        every = self.c.checkpoint_every
        if (every and step % every == 0) or (not every and end_of_epoch) or last:
            self._checkpoint()

    # -- records -----------------------------------------------------------------------------
    def _position(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.step / self.p.steps_per_epoch,
            "lr": self.p.lr.lr(self.step - 1),
            "density": self.p.density.density((self.step - 1) / self.p.steps_per_epoch),
        }

    def _log_window(self) -> None:
        tallies = gather_tallies(self.tallies["window"], self.ctx.device)
        self.tallies["window"] = Tally()
        run = gather_tallies(self.tallies["run"], self.ctx.device)
        totals = totals_record(run, self.p.numel)
        self._record({"kind": "step", **self._position(), **tally_record(tallies), **totals})

    def _evaluate(self, kind: str) -> None:
        """Score the test set: ``kind`` is "epoch" at epoch ends, "final" at a mid-epoch stop."""
        model = self.p.model
        if any(True for _ in model.buffers()):
            broadcast_buffers_(model)  # every rank scores rank 0's BatchNorm statistics
        model.eval()
        loss_sum, correct, count = self.p.task.scores(model)
        model.train()
        sums = torch.tensor([loss_sum, correct, count], dtype=torch.float64, device=self.ctx.device)
        dist.all_reduce(sums)  # the whole test set, whatever P is
        loss_sum, correct, count = sums.tolist()
        self.metrics = self.p.task.metrics(loss_sum, round(correct), round(count))
        epoch = gather_tallies(self.tallies["epoch"], self.ctx.device)
        run = gather_tallies(self.tallies["run"], self.ctx.device)
        record = {
            "kind": kind,
            **self._position(),
            **self.metrics,
            "train_loss": tally_record(epoch)["train_loss"],
            **totals_record(run, self.p.numel),
            "wall_s": self._wall(),
        }
        self._record(record)
        if self.ctx.rank == 0:
            logger.info("%s", epoch_line(record, self.p.total_steps, self.p.task.metric))

    def _record(self, record: dict[str, Any]) -> None:
        if self.run is None:
            return
        self.run.log(record)
        if self.tensorboard is not None:
            self.tensorboard.log(record, record.get("step", 0))

    def _describe(self) -> dict[str, Any]:
        return {
            "world_size": self.ctx.world_size,
            "numel": self.p.numel,
            "steps_per_epoch": self.p.steps_per_epoch,
            "total_steps": self.p.total_steps,
            "data": self.p.bundle.describe(),
            "launched_by": self.ctx.launched_by,
            "backend": self.ctx.backend,
        }

    def _wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    # -- checkpoints and the end -------------------------------------------------------------
    def _checkpoint(self) -> None:
        if any(True for _ in self.p.model.buffers()):
            broadcast_buffers_(self.p.model)
        extra = {"wall_seconds": self._wall(), "metrics": dict(self.metrics)}
        state = collect_checkpoint(self.p, self.step, self.tallies, extra)
        if self.run is not None and state is not None:
            self.run.save_checkpoint(state, self.step)

    def _resume(self) -> None:
        checkpoint = None
        if self.run is not None:
            _, checkpoint = self.run.load_latest_checkpoint()  # falls back past damaged files
        self.step, extra = restore_checkpoint(self.p, checkpoint, self.tallies)
        self.wall_before = float(extra["wall_seconds"])
        self.metrics = dict(extra["metrics"])
        self.started = time.perf_counter()
        if self.run is not None:
            dropped = self.run.truncate_log(self.step)
            logger.info("resuming at step %d (%d later log records dropped)", self.step, dropped)
            self._record({"kind": "resume", "step": self.step, **self._describe()})

    def _finish(self) -> None:
        run = gather_tallies(self.tallies["run"], self.ctx.device)
        if self.run is None:
            return
        summary = build_summary(
            self.c, self.p, self.step, run, self.metrics, self._wall(), self.train_seconds
        )
        self.run.write_summary(summary)
        if self.tensorboard is not None:
            self.tensorboard.finish(self.c.to_dict(), summary, self.step)

    def _progress_bar(self) -> tqdm:
        show = self.ctx.rank == 0 and self.c.progress and sys.stderr.isatty()
        return tqdm(
            total=self.p.total_steps, initial=self.step, disable=not show, leave=False, unit="step"
        )
