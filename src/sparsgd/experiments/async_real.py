"""``async-real``: the real parameter server, 4 workers of uneven speed, beside the simulator.

For each method (vanilla ASGD, Top-k 0.01 with memory) and seed, three cells
(:mod:`~sparsgd.experiments.async_real_cell`):

(1) real: one server and W worker processes; worker w is slowed s_w times (1, 1, 2, 4), so
    staleness is real; the server records every update's tau and evaluates on a schedule;
(2) sim-workers: W simulated workers at the same speeds, compute time calibrated from (1);
(3) sim-drawn: one simulated worker, tau ~ Poisson(mean tau measured in (1)).

The real cells run one after another (each starts W + 1 processes); the simulated cells,
whose specs take their number from the real cell, in a pool. Every cell is kept in
``out/cells/`` (CellStore: resumable). Verdicts (:mod:`~sparsgd.experiments.async_real_report`):
Candela et al.'s claim judged on the real cells, paired by seed; the simulator's staleness
prediction checked by a stated rule.

Learning rate (the same for both methods, not tuned here): ``LR`` = 0.125, the S-SGD studies'
momentum-free MNIST rate (10 x 0.05 for the average of P = 4 batches of 32,
:mod:`sparsgd.sync.recipes`) divided by P = 4, because each update here applies one worker's
batch of 32: the same step per sample (linear scaling, Goyal et al. 2017).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from sparsgd.experiments.async_real_cell import SOURCES, real_spec, run_cell, sim_specs
from sparsgd.experiments.async_real_report import async_real_outcome
from sparsgd.experiments.cells import CellStore
from sparsgd.experiments.spec import Experiment, Outcome, RunContext

__all__ = ["EXPERIMENT", "LR", "AsyncRealConfig", "async_real_config"]

logger = logging.getLogger(__name__)

LR = 0.125  # module docstring: 10 x 0.05 / 4, per update of one worker's batch of 32


@dataclass(frozen=True)
class AsyncRealConfig:
    model: str = "lenet5"
    dataset: str = "mnist"
    slowdown: tuple[float, ...] = (1.0, 1.0, 2.0, 4.0)
    methods: tuple[str, ...] = ("vanilla", "topk-0.01")
    steps: int = 1500  # 0.8 epoch of MNIST at batch 32
    lr: float = LR
    batch_size: int = 32
    test_limit: int = 2000
    evals: int = 15
    timeout_s: float = 1800.0  # the whole real run; a hang fails instead of blocking
    pool: int = 2  # processes running the simulated cells side by side

    @property
    def workers(self) -> int:
        return len(self.slowdown)


def async_real_config(smoke: bool) -> AsyncRealConfig:
    if smoke:
        return AsyncRealConfig(
            model="logreg",
            dataset="digits",
            slowdown=(1.0, 3.0),
            methods=("vanilla", "topk-0.1"),
            steps=16,
            test_limit=200,
            evals=4,
            timeout_s=300.0,
            pool=1,
        )
    return AsyncRealConfig()


def _real_spec(cfg: AsyncRealConfig, method: str, seed: int) -> dict[str, Any]:
    return real_spec(
        method=method,
        seed=seed,
        model=cfg.model,
        dataset=cfg.dataset,
        slowdown=cfg.slowdown,
        steps=cfg.steps,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        test_limit=cfg.test_limit,
        evals=cfg.evals,
        timeout_s=cfg.timeout_s,
    )


def run_async_real(cfg: AsyncRealConfig, ctx: RunContext) -> Outcome:
    store = CellStore(ctx.out)
    run = functools.partial(run_cell, data_dir=ctx.data_dir)
    real = {(m, s): _real_spec(cfg, m, s) for m in cfg.methods for s in ctx.seeds}
    name = {
        (m, src, s): f"{m}-{src}-s{s}" for m in cfg.methods for src in SOURCES for s in ctx.seeds
    }
    logger.info("async-real: %d real cells, slowdown %s", len(real), cfg.slowdown)
    done = store.run_all([(name[(m, "real", s)], spec) for (m, s), spec in real.items()], run)
    rates = [store.last_rate]
    sims = [
        (name[(m, src, s)], spec)
        for (m, s), base in real.items()
        for src, spec in sim_specs(base, done[name[(m, "real", s)]]).items()
    ]
    done.update(store.run_all(sims, run, workers=cfg.pool))
    rates.append(store.last_rate)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        m: {
            src: [done[name[(m, src, s)]] for s in ctx.seeds if name[(m, src, s)] in done]
            for src in SOURCES
        }
        for m in cfg.methods
    }
    return async_real_outcome(cfg, runs, ctx, rates, list(done))


EXPERIMENT = Experiment(
    name="async-real",
    title="The real parameter server with uneven workers, beside the simulator",
    summary="real PS with 4 workers slowed 1x, 1x, 2x, 4x: staleness histogram and accuracy "
    "of vanilla vs Top-k ASGD, beside the simulator at the same speeds and staleness",
    full_minutes=7,
    estimate="estimated from a measured sample (Top-k, seed 0, load 8-12): one real run of "
    "1500 LeNet-5 updates 71 s wall (the earlier round: 6 real runs and 12 simulations in 5.8 "
    "min), one simulation 17 CPU s; 6 real runs in a row, then 12 simulations in a pool of 2",
    default_seeds=3,
    configure=async_real_config,
    execute=run_async_real,
)
