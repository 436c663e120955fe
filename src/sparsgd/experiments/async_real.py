"""``async-real``: the real parameter server, 4 workers of uneven speed, beside the simulator.

For each method (vanilla ASGD, Top-k 0.01 with memory) and seed:

(1) real: ``sparsgd train --mode async``'s Python API (:class:`AsyncRun`) starts one server
    and W worker processes (gloo on 127.0.0.1); worker w is slowed s_w times (1, 1, 2, 4), so
    staleness is real; the server records every update's tau and evaluates on a schedule;
(2) simulated, same worker speeds: W simulated workers with the same slow-downs and a
    constant compute time T calibrated from (1): the real run applied n updates in t seconds
    and workers of relative speeds 1/s_w apply sum_w 1/s_w updates per T, so
    T = (t / n) * sum_w 1/s_w;
(3) simulated, same mean staleness: one worker, tau ~ Poisson(mean tau measured in (1)).

Reported: the staleness histograms of (1)-(3), the accuracy curves against updates, and
final accuracies (:mod:`~sparsgd.experiments.async_real_report`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.real_run import AsyncRun
from sparsgd.experiments.async_real_report import async_real_outcome
from sparsgd.experiments.async_setup import (
    METHODS,
    LoadedProblem,
    eval_curve,
    simulate_run,
)
from sparsgd.experiments.datasets import data_dir_for, load_bundle
from sparsgd.experiments.spec import Experiment, Outcome, RunContext
from sparsgd.runs import judge

__all__ = ["EXPERIMENT", "AsyncRealConfig", "async_real_config"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AsyncRealConfig:
    model: str = "lenet5"
    dataset: str = "mnist"
    slowdown: tuple[float, ...] = (1.0, 1.0, 2.0, 4.0)
    methods: tuple[str, ...] = ("vanilla", "topk-0.01")
    steps: int = 1500
    lr: float = 0.1
    batch_size: int = 32
    test_limit: int = 2000
    evals: int = 15
    timeout_s: float = 1800.0  # the whole real run; a hang fails instead of blocking

    @property
    def workers(self) -> int:
        return len(self.slowdown)


def async_real_config(smoke: bool) -> AsyncRealConfig:
    if smoke:
        return AsyncRealConfig(
            model="logreg",
            dataset="digits",
            slowdown=(1.0, 3.0),
            methods=("topk-0.1",),
            steps=16,
            test_limit=200,
            evals=4,
            timeout_s=300.0,
        )
    return AsyncRealConfig()


def _config(cfg: AsyncRealConfig, method: str, seed: int) -> AsyncConfig:
    every = max(1, cfg.steps // cfg.evals)
    base = AsyncConfig(
        mode="async",
        workers=cfg.workers,
        steps=cfg.steps,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=seed,
        slowdown=cfg.slowdown,
        eval_every=every,
        log_every=every,
        timeout_s=min(cfg.timeout_s, 300.0),
    )
    return METHODS[method].apply(base)


def _real(cfg: AsyncRealConfig, run_cfg: AsyncConfig, problem, folder: str) -> dict:
    """(1) one real run: summary and accuracy curve."""
    run = AsyncRun(run_cfg, problem, folder, overwrite=True)
    run.start()
    summary = run.wait(cfg.timeout_s)
    updates, accuracy = eval_curve(folder)
    diverged = judge(summary).label == "diverged"  # exploded; its accuracy counts as chance
    return {"summary": summary, "updates": updates, "accuracy": accuracy, "diverged": diverged}


def _compute_time(cfg: AsyncRealConfig, real: dict) -> float:
    """(2) T = (t / n) * sum_w 1 / s_w, from the real run."""
    s = real["summary"]
    return s["wall_seconds"] / max(1, s["steps"]) * sum(1 / w for w in cfg.slowdown)


def _simulated(cfg, run_cfg: AsyncConfig, real: dict, problem, folder: str) -> dict:
    sim = replace(run_cfg, mode="sim", timeout_s=run_cfg.timeout_s)
    same_speed = replace(sim, worker_time=f"constant:{_compute_time(cfg, real):.6g}")  # (2)
    mean_tau = real["summary"]["staleness"]["mean"]
    same_tau = replace(sim, workers=1, slowdown=None, staleness=f"poisson:{mean_tau:.6g}")  # (3)
    return {
        "sim-workers": simulate_run(same_speed, problem, f"{folder}-sim-workers"),
        "sim-drawn": simulate_run(same_tau, problem, f"{folder}-sim-drawn"),
    }


def run_async_real(cfg: AsyncRealConfig, ctx: RunContext) -> Outcome:
    problem = LoadedProblem(
        cfg.model, cfg.dataset, data_dir_for(cfg.dataset, ctx.data_dir), test_limit=cfg.test_limit
    )
    chance = 1.0 / load_bundle(cfg.dataset, ctx.data_dir).num_classes
    runs: dict[str, dict[str, list[dict]]] = {}
    for seed in ctx.seeds:
        seeded = replace(problem, seed=seed)
        for method in cfg.methods:
            run_cfg = _config(cfg, method, seed)
            folder = str(ctx.run_dir(f"{method}-seed{seed}"))
            logger.info(
                "async-real: %s seed %d, %d workers, slowdown %s",
                method,
                seed,
                cfg.workers,
                cfg.slowdown,
            )
            real = _real(cfg, run_cfg, seeded, folder)
            by_source = runs.setdefault(method, {})
            for source, result in (
                ("real", real),
                *_simulated(cfg, run_cfg, real, seeded, folder).items(),
            ):
                result["chance"] = chance
                by_source.setdefault(source, []).append(result)
    return async_real_outcome(cfg, runs, ctx)


EXPERIMENT = Experiment(
    name="async-real",
    title="The real parameter server with uneven workers, beside the simulator",
    summary="real PS with 4 workers slowed 1x, 1x, 2x, 4x: staleness histogram and accuracy "
    "of vanilla vs Top-k ASGD, beside the simulator at the same speeds and staleness",
    full_minutes=6,
    estimate="measured: 5.8 min for 2 methods x 3 seeds x 1500 LeNet-5 updates on the real "
    "server (5 processes) plus 2 simulations each, on 2 cores shared with other work",
    default_seeds=3,
    configure=async_real_config,
    execute=run_async_real,
)
