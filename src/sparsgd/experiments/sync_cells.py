"""One run of an S-SGD study as a cell of :class:`~sparsgd.experiments.cells.CellStore`.

    cell = SyncCell(task, "gtopk", 0.001, "authors", seed=0, workers=4)
    store.run_all([(cell.name, cell.spec())], partial(run_cell, data_dir=...), workers=2)

A cell's spec is the run's resolved SyncConfig (after its recipe) without the fields that do
not change its numbers, the engine that runs it and ``CELL_VERSION``: a recipe whose
definition changes makes its cells run again. Engines:

    "sim"   P simulated ranks in this process (:mod:`~sparsgd.experiments.sync_sim`)
    "real"  P gloo processes, the ``sparsgd train`` path (:mod:`~sparsgd.experiments.sync_batch`)

Both compute the same numbers (``tests/experiments/test_sync_sim.py``); a study keeps one
"real" cell beside its "sim" twin as a cross-check. A cell's result is small: outcome, final
values, and per evaluation (epoch ends) the curves

    epoch, test_accuracy, test_loss, train_loss, bytes_sent (mean per rank, so far),
    steps_k_over_d (sum of k_t / d so far), modelled_s and wall_s (seconds so far)

(``steps_k_over_d`` and ``modelled_s`` only from "sim"). The score a verdict pairs is the
final test accuracy; a run stopped by a non-finite loss scores chance, 1/K.
"""

from __future__ import annotations

import functools
import math
import tempfile
from dataclasses import dataclass, replace
from typing import Any

from sparsgd.experiments.datasets import data_dir_for
from sparsgd.experiments.sync_batch import run_sync_batch
from sparsgd.experiments.sync_sim import run_simulated
from sparsgd.experiments.sync_tasks import TIMEOUT_S, SyncTask, with_recipe
from sparsgd.runs import judge
from sparsgd.sync.build import load_bundle
from sparsgd.sync.config import SyncConfig, config_from_dict

__all__ = [
    "CELL_VERSION",
    "ENGINES",
    "NO_DENSITY_WARMUP",
    "SyncCell",
    "first_reaching",
    "run_cell",
    "score",
]

CELL_VERSION = 1  # raise when the code changes what a cell computes: every cell runs again
ENGINES = ("sim", "real")
# SyncConfig fields left out of a spec: they change where and how a run reports, not its numbers
NOT_IN_SPEC = (
    *("out", "data_dir", "progress", "timeout_s", "log_every", "checkpoint_every"),
    *("keep_checkpoints", "verify_every", "tensorboard"),
)
CURVES = (
    *("epoch", "test_accuracy", "test_loss", "train_loss", "bytes_sent"),
    *("steps_k_over_d", "modelled_s", "wall_s"),
)
DIGITS = 6  # significant digits kept in a cell file
NO_DENSITY_WARMUP = ", rho from step 1"  # an arm's recipe label when the density warm-up is off


@dataclass(frozen=True)
class SyncCell:
    """One run: a task trained by one method at one density under one recipe and seed."""

    task: SyncTask
    method: str
    density: float
    recipe: str
    seed: int
    workers: int
    engine: str = "sim"
    density_warmup: bool = True  # False: the recipe's density warm-up left out (rho from step 1)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}; got {self.engine!r}")

    @property
    def variant(self) -> str:
        """``"gtopk-0.001"`` (``"dense"`` for dense S-SGD)."""
        return "dense" if self.method == "dense" else f"{self.method}-{self.density:g}"

    @property
    def arm_recipe(self) -> str:
        """The recipe as arms name it, e.g. ``"momentum-free, rho from step 1"`` without warm-up."""
        return self.recipe if self.density_warmup else f"{self.recipe}{NO_DENSITY_WARMUP}"

    @property
    def name(self) -> str:
        tail = "" if self.engine == "sim" else f"-{self.engine}"
        recipe = self.recipe if self.density_warmup else f"{self.recipe}-nodw"
        return f"{self.task.key}-{self.variant}-{recipe}-s{self.seed}{tail}"

    def config(self, out: str = "", data_dir: str | None = None) -> SyncConfig:
        base = self.task.config(self.method, self.density, self.workers, out, self.seed, data_dir)
        config = with_recipe(base, self.recipe, self.task.warmup_epochs)
        return config if self.density_warmup else replace(config, density_warmup=0.0)

    def spec(self) -> dict[str, Any]:
        values = self.config().to_dict()
        return {
            "version": CELL_VERSION,
            "engine": self.engine,
            "config": {k: v for k, v in values.items() if k not in NOT_IN_SPEC},
        }


@functools.lru_cache(maxsize=2)
def _bundle(dataset: str, data_dir: str | None, seed: int):
    """The data set, loaded once per process for the cells that share it."""
    return load_bundle(SyncConfig(out="", dataset=dataset, data_dir=data_dir, seed=seed))


def run_cell(spec: dict[str, Any], data_dir: str | None = None) -> dict[str, Any]:
    """Run the cell ``spec`` on its engine; its small result (module docstring)."""
    values = dict(spec["config"])
    values.update(
        out="",
        data_dir=data_dir_for(values["dataset"], data_dir),
        progress=False,
        timeout_s=TIMEOUT_S,
    )
    config = config_from_dict(values)
    if spec["engine"] == "sim":
        bundle = _bundle(config.dataset, config.data_dir, config.seed)
        run = run_simulated(config, bundle)
        return _compact(run["records"], run["summary"], run["diverged"], "sim")
    with tempfile.TemporaryDirectory(prefix="sparsgd-cell-") as folder:
        (run,) = run_sync_batch([replace(config, out=folder, log_every=10**9)])
    records = [
        {**r, "bytes_sent": sum(r["bytes_sent_total"]) / len(r["bytes_sent_total"])}
        for r in run["epochs"]
    ]
    return _compact(records, run["summary"], run["diverged"], "real")


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{DIGITS}g}") if math.isfinite(value) else None
    return value


def _compact(
    records: list[dict[str, Any]], summary: dict[str, Any] | None, diverged: str | None, engine
) -> dict[str, Any]:
    curves = {name: [_round(r.get(name)) for r in records] for name in CURVES}
    if diverged is not None or summary is None:
        outcome, reason, final = "diverged", diverged or "no summary", {}
    else:
        verdict = judge(summary)
        outcome, reason = verdict.label, verdict.reason
        sent = summary["bytes_sent_per_rank"]
        final = {
            "test_accuracy": summary["final_test_accuracy"],
            "test_loss": summary["final_test_loss"],
            "steps": summary["steps"],
            "epochs": summary["epochs"],
            "bytes_sent": sum(sent) / len(sent),
            "dense_bytes": summary["dense_bytes_per_rank"],
            "wall_seconds": summary["wall_seconds"],
            "modelled_seconds": summary.get("modelled_seconds"),
        }
    return {
        "engine": engine,
        "outcome": outcome,
        "outcome_reason": reason,
        "num_classes": (summary or {}).get("num_classes"),
        "numel": (summary or {}).get("numel"),
        "final": {k: _round(v) for k, v in final.items()},
        "curves": curves,
    }


def score(result: dict[str, Any], chance: float) -> float:
    """The final test accuracy; ``chance`` for a run that diverged or has no final value."""
    accuracy = result["final"].get("test_accuracy")
    if result["outcome"] == "diverged" or accuracy is None:
        return chance
    return float(accuracy)


def first_reaching(result: dict[str, Any], target: float) -> tuple[float, float | None] | None:
    """``(epoch, steps k / d)`` of the first evaluation at or above ``target``, or None."""
    curves = result["curves"]
    for i, accuracy in enumerate(curves["test_accuracy"]):
        if accuracy is not None and accuracy >= target:
            return curves["epoch"][i], curves["steps_k_over_d"][i]
    return None
