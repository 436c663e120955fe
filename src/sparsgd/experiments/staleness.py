"""``staleness``: sparsified ASGD against vanilla ASGD and the counter-measures, in the simulator.

What the paper says (Candela, Franzese, Filippone, Michiardi, arXiv 1910.09466), as far as the
stored copies reachable here show it:

- v1 (21 Oct 2019), "Sparsification as a Remedy for Staleness in Distributed Asynchronous
  SGD" (abstract, as on EURECOM's publication page 6080 and deep.ai): the ergodic rate of
  sparsified SGD with staleness matches O(1/sqrt(T)) of non-convex SGD, and the empirical
  study shows "that, in practice, sparsification consistently improves over vanilla SGD and
  current alternatives to mitigate the effects of staleness".
- The later version, "Convergence Analysis of Sparsified Asynchronous SGD" (ar5iv's rendering
  of 1910.09466; the same new abstract appears under the v1 title on HAL hal-03345253v1 and
  on a record of 1910.09466v3): the empirical study "confirm[s] that the effects of
  sparsification on the convergence rate are negligible, when compared to 'vanilla' SGD".
  The claim of improving over vanilla SGD and over the alternatives is no longer made.
- Not found: the experiments section of either version (models and data, how staleness was
  produced, its distribution and values, which counter-measures were run, learning rates,
  run lengths, seeds). The stored copies hold the abstracts and the start of the
  introduction only. The setup below is therefore this project's, not the paper's; the
  counter-measures are the usual ones from the literature (staleness-aware rate, Zhang et al.
  2016; exponential dampening, Damaskinos et al. 2018; DC-ASGD, Zheng et al. 2017).

The study (docs/experiments.md, section staleness):

    (1) problem    FNN-3 on MNIST; the last ``valid_size`` training samples are held out
    (2) staleness  one simulated worker, tau ~ Poisson(S) per update, S in ``means``
                   (S = 0: synchronous SGD); the server's own update code
    (3) methods    vanilla; Top-k and random-k at density 0.01, each with and without residual
                   memory; the counter-measures staleness-aware, dampening (beta 0.1) and
                   DC-ASGD (lambda 0.04). At S = 0 every counter-measure is vanilla (tau = 0)
                   and is not run
    (4) budget     ``steps`` updates of ``batch_size`` (3.0 epochs) for every run; every
                   (S, method) over the same lr grid and the same seeds
    (5) cells      one run each, kept as one JSON file by CellStore in ``out/cells/``
                   (resumable; a pool of ``workers`` processes, one torch thread each)
    (6) report     lr* and the best counter-measure chosen on the held-out split, test
                   accuracy against S with 95% t intervals over seeds, curves against
                   updates, verdicts per stale cell (:mod:`~sparsgd.experiments.staleness_verdicts`)

Dropped to fit 2 cores (the length of runs was not cut): LeNet-5 (3-5x the cost of FNN-3 per
update), staleness from simulated workers with random compute times, density 0.1, mean
staleness 4 and 16.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from sparsgd.experiments.cells import CellStore
from sparsgd.experiments.spec import Experiment, Outcome, RunContext
from sparsgd.experiments.staleness_cell import cell_spec, run_cell
from sparsgd.experiments.staleness_report import staleness_outcome
from sparsgd.experiments.staleness_verdicts import COUNTERS

__all__ = ["EXPERIMENT", "StalenessConfig", "staleness_config"]

logger = logging.getLogger(__name__)

METHODS = (
    "vanilla",
    "topk-0.01",
    "topk-0.01-nomem",
    "randk-0.01",
    "randk-0.01-nomem",
    *COUNTERS,
)


@dataclass(frozen=True)
class StalenessConfig:
    """The study's knobs; steps (1)-(5) of the module docstring."""

    label: str = "FNN-3 / MNIST"
    model: str = "fnn3"
    dataset: str = "mnist"
    valid_size: int = 5000  # (1) held-out training samples that choose the lr
    means: tuple[int, ...] = (0, 8, 32)  # (2) mean staleness S
    methods: tuple[str, ...] = METHODS  # (3)
    lrs: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3)  # (4) the shared grid
    steps: int = 1296  # (4) 3.02 epochs of the 55 000 training samples at batch 128
    eval_every: int = 108  # a quarter epoch
    batch_size: int = 128
    workers: int = 2  # (5) processes of the pool

    def cells(self, seeds: tuple[int, ...]) -> list[tuple[str, dict[str, Any]]]:
        """(name, spec) of every run: S, then method, then lr, then seed."""
        out = []
        for s in self.means:
            for method in self.methods:
                if s == 0 and method in COUNTERS:  # (3) identical to vanilla at tau = 0
                    continue
                for lr in self.lrs:
                    for seed in seeds:
                        spec = cell_spec(
                            model=self.model,
                            dataset=self.dataset,
                            valid_size=self.valid_size,
                            method=method,
                            lr=lr,
                            mean_staleness=s,
                            steps=self.steps,
                            batch_size=self.batch_size,
                            eval_every=self.eval_every,
                            seed=seed,
                        )
                        out.append((f"{self.model}-S{s}-{method}-lr{lr:g}-s{seed}", spec))
        return out


def staleness_config(smoke: bool) -> StalenessConfig:
    if smoke:
        return StalenessConfig(
            label="logistic regression / digits",
            model="logreg",
            dataset="digits",
            valid_size=300,
            means=(0, 4),
            lrs=(0.05, 0.2),
            steps=24,
            eval_every=12,
            batch_size=16,
            workers=1,
        )
    return StalenessConfig()


def run_staleness(cfg: StalenessConfig, ctx: RunContext) -> Outcome:
    cells = cfg.cells(ctx.seeds)
    store = CellStore(ctx.out)
    results = store.run_all(cells, partial(run_cell, data_dir=ctx.data_dir), workers=cfg.workers)
    runs: dict[tuple[int, str, float], list[dict[str, Any]]] = {}
    for name, spec in cells:  # seed order within each key: the pairing of the verdicts
        key = (int(spec["staleness"].split(":")[1]), spec["method"], spec["lr"])
        runs.setdefault(key, []).append(results[name])
    return staleness_outcome(cfg, runs, ctx, store.last_rate)


EXPERIMENT = Experiment(
    name="staleness",
    title="Sparsification under staleness: simulated asynchronous SGD (Candela et al. 2019)",
    summary="vanilla vs Top-k / random-k (memory or not) vs staleness-aware, dampening, "
    "DC-ASGD; FNN-3/MNIST, tau ~ Poisson(0, 8, 32), 3 epochs, lr grid of 5, held-out lr choice",
    full_minutes=35,
    estimate="estimated: 135 dense-update runs x 17.4 CPU s + 180 sparse runs x 10.3 CPU s "
    "(means of 16 measured full-size runs) = 4 200 CPU s over 2 processes on 2 idle cores; "
    "on the shared machine (load 4-10) the sample ran at 119-145 runs/h with 1 process and "
    "63-71 runs/h with 2",
    default_seeds=3,
    configure=staleness_config,
    execute=run_staleness,
)
