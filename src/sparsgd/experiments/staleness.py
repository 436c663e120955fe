"""``staleness``: sparsified ASGD against vanilla ASGD and the counter-measures, in the simulator.

Candela et al. (2019) claim that sparsifying stale gradients does at least as well as vanilla
ASGD and as the usual counter-measures. For each network (LeNet-5, FNN-3 on MNIST), mean
staleness S and method (:data:`~sparsgd.experiments.async_setup.METHODS`), the deterministic
simulator (``sparsgd train --mode sim``) applies a fixed number of updates, from two sources of
staleness (docs/algorithms.md section 4):

    drawn     one worker, tau ~ Poisson(S) per update (S = 0: synchronous SGD)
    workers   W = S + 1 simulated workers with exponential compute times: mean tau about W - 1

Reported, mean ± std over seeds: test accuracy after the last update, the updates needed to
reach a target accuracy, and accuracy curves (:mod:`~sparsgd.experiments.staleness_report`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.experiments.async_setup import METHODS, LoadedProblem, simulate_run
from sparsgd.experiments.datasets import data_dir_for, load_bundle
from sparsgd.experiments.spec import Experiment, Outcome, RunContext
from sparsgd.experiments.staleness_report import staleness_outcome

__all__ = ["EXPERIMENT", "StalenessConfig", "StalenessSetting", "StalenessTask", "staleness_config"]

logger = logging.getLogger(__name__)

ALL_METHODS = tuple(METHODS)
WORKER_METHODS = ("vanilla", "topk-0.1", "topk-0.01", "staleness-aware", "dc-asgd")


@dataclass(frozen=True)
class StalenessSetting:
    """Where staleness comes from and its mean."""

    source: str  # "drawn" | "workers"
    mean: int

    @property
    def label(self) -> str:
        return "sync" if self.mean == 0 else f"{self.source}-{self.mean}"

    def apply(self, cfg: AsyncConfig, worker_time: str) -> AsyncConfig:
        if self.mean == 0:
            return replace(cfg, workers=1, staleness=None, worker_time=worker_time)
        if self.source == "drawn":
            return replace(cfg, workers=1, staleness=f"poisson:{self.mean}")
        return replace(cfg, workers=self.mean + 1, staleness=None, worker_time=worker_time)


@dataclass(frozen=True)
class StalenessTask:
    label: str
    model: str
    lr: float
    steps: int  # server updates per run
    target: float  # test accuracy whose first crossing is reported


@dataclass(frozen=True)
class StalenessConfig:
    tasks: tuple[StalenessTask, ...]
    dataset: str = "mnist"
    drawn_means: tuple[int, ...] = (0, 4, 8, 16, 32)
    drawn_methods: tuple[str, ...] = ALL_METHODS
    worker_means: tuple[int, ...] = (4, 8, 16, 32)
    worker_methods: tuple[str, ...] = WORKER_METHODS
    worker_time: str = "exponential:0.1"
    batch_size: int = 32
    test_limit: int = 2000  # test samples scored at each evaluation
    evals: int = 15  # evaluations per run

    def grid(self) -> list[tuple[StalenessSetting, str]]:
        """(setting, method) pairs: every drawn mean with drawn_methods, then the workers."""
        pairs = [
            (StalenessSetting("drawn", s), m) for s in self.drawn_means for m in self.drawn_methods
        ]
        pairs += [
            (StalenessSetting("workers", s), m)
            for s in self.worker_means
            for m in self.worker_methods
        ]
        return pairs


def staleness_config(smoke: bool) -> StalenessConfig:
    if smoke:
        return StalenessConfig(
            (
                StalenessTask(
                    "logistic regression / digits", "logreg", lr=0.1, steps=12, target=0.3
                ),
            ),
            dataset="digits",
            drawn_means=(0, 4),
            worker_means=(4,),
            worker_methods=("vanilla", "topk-0.1"),
            test_limit=200,
            evals=3,
        )
    return StalenessConfig(
        (
            StalenessTask("LeNet-5 / MNIST", "lenet5", lr=0.1, steps=300, target=0.85),
            StalenessTask("FNN-3 / MNIST", "fnn3", lr=0.1, steps=300, target=0.85),
        )
    )


def _base(cfg: StalenessConfig, task: StalenessTask, seed: int) -> AsyncConfig:
    return AsyncConfig(
        mode="sim",
        steps=task.steps,
        lr=task.lr,
        batch_size=cfg.batch_size,
        seed=seed,
        eval_every=max(1, task.steps // cfg.evals),
        log_every=max(1, task.steps // cfg.evals),
    )


def run_staleness(cfg: StalenessConfig, ctx: RunContext) -> Outcome:
    runs: dict[str, dict[tuple[str, str], list[dict]]] = {}
    grid = cfg.grid()
    for task in cfg.tasks:
        bundle = load_bundle(cfg.dataset, ctx.data_dir)
        problem = LoadedProblem(
            task.model,
            cfg.dataset,
            data_dir_for(cfg.dataset, ctx.data_dir),
            bundle=bundle,
            test_limit=cfg.test_limit,
        )
        by_cell = runs.setdefault(task.model, {})
        for seed in ctx.seeds:
            problem_s = replace(problem, seed=seed)
            for i, (setting, method) in enumerate(grid):
                logger.info(
                    "staleness: %s seed %d, %s %s (%d/%d)",
                    task.model,
                    seed,
                    setting.label,
                    method,
                    i + 1,
                    len(grid),
                )
                run_cfg = METHODS[method].apply(
                    setting.apply(_base(cfg, task, seed), cfg.worker_time)
                )
                folder = str(ctx.run_dir(task.model, setting.label, f"{method}-seed{seed}"))
                result = simulate_run(run_cfg, problem_s, folder, reuse=ctx.reuse)
                result.update(chance=1.0 / bundle.num_classes, steps=task.steps)
                by_cell.setdefault((setting.label, method), []).append(result)
    return staleness_outcome(cfg, runs, ctx)


EXPERIMENT = Experiment(
    name="staleness",
    title="Sparsification under staleness: simulated asynchronous SGD (Candela et al. 2019)",
    summary="vanilla vs sparsified ASGD (Top-k/random-k, memory or not) vs staleness-aware "
    "rate, dampening, DC-ASGD at mean staleness 0-32, LeNet-5 and FNN-3 on MNIST, simulator",
    full_minutes=60,
    estimate="measured: 60 min for 2 networks x 70 (staleness, method) cells x 3 seeds x 300 "
    "updates (one process, one torch thread) on 2 cores shared with other work",
    default_seeds=3,
    configure=staleness_config,
    execute=run_staleness,
)
