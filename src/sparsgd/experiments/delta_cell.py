"""One run of ``gtopk-delta`` as a cell of :class:`~sparsgd.experiments.cells.CellStore`.

    cell = DeltaCell(mnist_task("LeNet-5 / MNIST", "lenet5"), "gtopk", 4, 0.001, "authors", 0)
    store.run_all([(cell.name, cell.spec())], partial(run_cell, data_dir=...), workers=2)

A cell's spec is the run's resolved SyncConfig (after its recipe, with the task's warm-up
length) less the fields that do not change its numbers, the step cap and ``CELL_VERSION``.
Its result is small: the per-epoch records of :mod:`~sparsgd.experiments.delta_loop`, the
means over every iteration, and a thinned trace,

    trace = the records of steps THIN, 2 THIN, 3 THIN, ...   (epoch, delta, delta_topk, density)

so the committed file stays small (a LeNet-5 run has ~2 300 steps); the per-iteration figure
draws the thinned trace, every mean is over all iterations.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

from sparsgd.experiments.datasets import data_dir_for
from sparsgd.experiments.delta_loop import DELTA_METHODS, run_delta
from sparsgd.experiments.sync_tasks import SyncTask, with_recipe
from sparsgd.sync.build import load_bundle
from sparsgd.sync.config import SyncConfig, config_from_dict

__all__ = ["CELL_VERSION", "THIN", "DeltaCell", "run_cell"]

CELL_VERSION = 1  # raise when the code changes what a cell computes: every cell runs again
THIN = 10  # by default one step in THIN is kept in a cell's trace
DIGITS = 6  # significant digits kept in a cell file
# SyncConfig fields left out of a spec: they change where and how a run reports, not its numbers
NOT_IN_SPEC = (
    *("out", "data_dir", "progress", "timeout_s", "log_every", "checkpoint_every"),
    *("keep_checkpoints", "verify_every", "tensorboard"),
)
TRACE_KEYS = ("epoch", "delta", "delta_topk", "density")


@dataclass(frozen=True)
class DeltaCell:
    """One run whose delta is measured: a task, method and P under one recipe and seed."""

    task: SyncTask
    method: str  # "gtopk" | "topk" (Top-k S-SGD, the all-gather of local top-k)
    workers: int
    density: float
    recipe: str
    seed: int
    max_steps_per_epoch: int | None = None  # None: the whole shard every epoch
    thin: int = THIN  # one step in ``thin`` is kept in the trace

    def __post_init__(self) -> None:
        if self.method not in DELTA_METHODS:
            raise ValueError(f"method must be one of {DELTA_METHODS}; got {self.method!r}")
        if isinstance(self.thin, bool) or not isinstance(self.thin, int) or self.thin < 1:
            raise ValueError(
                f"thin must be an integer >= 1 (steps per kept step); got {self.thin!r}"
            )

    @property
    def run(self) -> str:
        """The run without its seed: ``"lenet5-P4-gtopk"``."""
        return f"{self.task.model}-P{self.workers}-{self.method}"

    @property
    def name(self) -> str:
        return f"{self.run}-{self.recipe}-s{self.seed}"

    def config(self) -> SyncConfig:
        base = self.task.config(self.method, self.density, self.workers, "", self.seed, None)
        return with_recipe(base, self.recipe, self.task.warmup_epochs)

    def spec(self) -> dict[str, Any]:
        values = self.config().to_dict()
        return {
            "version": CELL_VERSION,
            "max_steps_per_epoch": self.max_steps_per_epoch,
            "thin": self.thin,
            "config": {k: v for k, v in values.items() if k not in NOT_IN_SPEC},
        }


@functools.lru_cache(maxsize=2)
def _bundle(dataset: str, data_dir: str | None, seed: int):
    """The data set, loaded once per process for the cells that share it."""
    return load_bundle(SyncConfig(out="", dataset=dataset, data_dir=data_dir, seed=seed))


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{DIGITS}g}") if math.isfinite(value) else None
    return value


def run_cell(spec: dict[str, Any], data_dir: str | None = None) -> dict[str, Any]:
    """Train the cell ``spec`` and return its small result (module docstring)."""
    t0 = time.perf_counter()
    values = dict(spec["config"])
    values.update(out="", data_dir=data_dir_for(values["dataset"], data_dir), progress=False)
    config = config_from_dict(values)
    bundle = _bundle(config.dataset, config.data_dir, config.seed)
    trace = run_delta(config, bundle, spec["max_steps_per_epoch"])
    deltas = [r["delta"] for r in trace.steps]
    thin = spec["thin"]
    kept = [r for r in trace.steps if r["step"] % thin == 0]
    final = trace.epochs[-1]["test_accuracy"] if trace.epochs and not trace.diverged else None
    return {
        "outcome": "ok" if trace.diverged is None else "diverged",
        "reason": trace.diverged,
        "numel": trace.numel,
        "k": trace.k,
        "num_classes": bundle.num_classes,
        "steps_per_epoch": trace.steps_per_epoch,
        "iterations": len(deltas),
        "mean_delta": _round(sum(deltas) / len(deltas)) if deltas else None,
        "fraction_below_one": _round(sum(d < 1 for d in deltas) / len(deltas)) if deltas else None,
        "final_test_accuracy": _round(final),
        "epochs": [{k: _round(v) for k, v in e.items()} for e in trace.epochs],
        "trace": {key: [_round(r[key]) for r in kept] for key in TRACE_KEYS},
        "wall_seconds": _round(time.perf_counter() - t0),
    }
