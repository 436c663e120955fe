"""What the asynchronous studies share: the compared methods, the problem, one simulated run.

A method is a compressor with its density and memory, and a server policy (docs/algorithms.md
section 4): vanilla ASGD sends dense gradients with a fixed rate; sparsified ASGD sends Top-k
or random-k with or without residual memory; the counter-measures change the server's rate
(staleness-aware eta / max(1, tau), dampening eta exp(-beta tau)) or the update (DC-ASGD).

The data set is loaded once per experiment and handed to every run through
:class:`LoadedProblem` (a :class:`~sparsgd.worker.problem.Problem` that keeps it, and
scores on the first ``test_limit`` test samples to keep evaluations cheap).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import Tensor

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.compress.checks import NonFiniteError
from sparsgd.data import DatasetBundle
from sparsgd.runs import NonFiniteRecordError, RunDir, judge
from sparsgd.sim.sim_run import run_simulation
from sparsgd.worker.problem import Problem

__all__ = [
    "METHODS",
    "AsyncMethod",
    "LoadedProblem",
    "accuracy_after",
    "eval_curve",
    "flushed_accuracy",
    "simulate_run",
    "staleness_of",
]

logger = logging.getLogger(__name__)

SUMMARY = "summary.json"  # written by a run that finished
CONFIG = "config.json"


@dataclass(frozen=True)
class AsyncMethod:
    label: str
    compressor: str = "dense"
    density: float = 1.0
    memory: str = "none"
    policy: str = "vanilla"

    def apply(self, cfg: AsyncConfig) -> AsyncConfig:
        return replace(
            cfg,
            compressor=self.compressor,
            density=self.density,
            memory=self.memory,
            policy=self.policy,
        )


METHODS: dict[str, AsyncMethod] = {
    m.label: m
    for m in (
        AsyncMethod("vanilla"),
        AsyncMethod("topk-0.1", "topk", 0.1, "residual"),
        AsyncMethod("topk-0.1-nomem", "topk", 0.1, "none"),
        AsyncMethod("topk-0.01", "topk", 0.01, "residual"),
        AsyncMethod("topk-0.01-nomem", "topk", 0.01, "none"),
        AsyncMethod("randk-0.1", "randomk", 0.1, "residual"),
        AsyncMethod("randk-0.01", "randomk", 0.01, "residual"),
        AsyncMethod("randk-0.01-nomem", "randomk", 0.01, "none"),
        AsyncMethod("staleness-aware", policy="staleness_aware"),
        AsyncMethod("dampening", policy="dampening"),
        AsyncMethod("dc-asgd", policy="dc_asgd"),
    )
}


@dataclass(frozen=True)
class LoadedProblem(Problem):
    """A Problem whose data set is already loaded; scores on the first ``test_limit`` samples."""

    bundle: DatasetBundle | None = field(default=None, compare=False, repr=False)
    test_limit: int | None = None

    def load(self) -> DatasetBundle:
        return super().load() if self.bundle is None else self.bundle

    def test_data(self, bundle: DatasetBundle) -> tuple[Tensor, Tensor]:
        inputs, targets = super().test_data(bundle)
        if self.test_limit is None:
            return inputs, targets
        return inputs[: self.test_limit], targets[: self.test_limit]


def eval_curve(folder: str) -> tuple[list[float], list[float]]:
    """(updates, test accuracy) of the "eval" records of a run folder, in order."""
    run = RunDir(folder, resume=True)
    try:
        evals = [r for r in run.read_log() if r.get("kind") == "eval"]
    finally:
        run.close()
    return [float(r["step"]) for r in evals], [float(r["test_accuracy"]) for r in evals]


def _simulate(cfg: AsyncConfig, problem: Problem, folder: str) -> dict[str, Any] | None:
    """Run the simulation into a fresh ``folder``; None when it diverged."""
    _clear_run_folder(Path(folder))
    try:
        return run_simulation(cfg, problem, folder)
    except (NonFiniteRecordError, NonFiniteError) as err:
        logger.warning("%s diverged: %s", folder, err)
        return None


def _clear_run_folder(path: Path) -> None:
    """Remove an earlier run of this experiment from ``path`` (only a run folder is removed)."""
    if (path / "config.json").is_file():
        shutil.rmtree(path)


def _finished_before(cfg: AsyncConfig, problem: Problem, path: Path) -> dict[str, Any] | None:
    """The summary of a finished simulation of exactly ``cfg`` and ``problem`` in ``path``."""
    if not (path / SUMMARY).is_file() or not (path / CONFIG).is_file():
        return None
    expected = {"mode": "sim", **cfg.to_record(), "problem": problem.to_record()}
    stored = json.loads((path / CONFIG).read_text())
    if stored != json.loads(json.dumps(expected)):
        return None
    return json.loads((path / SUMMARY).read_text())


def simulate_run(
    cfg: AsyncConfig, problem: Problem, folder: str, reuse: bool = False
) -> dict[str, Any]:
    """One simulated run into ``folder``: its summary, accuracy curve and whether it diverged.

    A run whose model or residual stops being finite is stopped by the run folder (which
    refuses non-finite records) or by the worker's checks; that is an outcome of the study,
    not a failure of the experiment: it comes back with ``diverged`` True, ``summary`` None
    and the evaluations made before it diverged. ``reuse``: a folder that already holds a
    finished simulation of the same config is read back (the simulator is deterministic, so
    running it again would give the same records).
    """
    summary = _finished_before(cfg, problem, Path(folder)) if reuse else None
    if summary is None:
        summary = _simulate(cfg, problem, folder)
    if summary is not None and judge(summary).label == "diverged":  # finite, but exploded
        logger.warning("%s diverged: %s", folder, judge(summary).reason)
        summary = None
    updates, accuracy = eval_curve(folder)
    return {
        "summary": summary,
        "updates": updates,
        "accuracy": accuracy,
        "diverged": summary is None,
    }


def accuracy_after(run: dict[str, Any], steps: int) -> float:
    """Test accuracy of the last evaluation at or before update ``steps``.

    That is the model after the fixed number of updates, before the workers flush their
    residuals at the end (a flush applies all the unsent gradient mass at once and moves the
    final evaluation; ``summary.final_test_accuracy`` is taken after it). A run that diverged
    scores chance (``run["chance"]``): a model that stopped being finite predicts one class,
    which is about chance on balanced classes, so a method that diverges in some seeds does
    not look as good as its surviving seeds.
    """
    if run["diverged"]:
        return float(run["chance"])
    kept = [a for u, a in zip(run["updates"], run["accuracy"], strict=True) if u <= steps]
    if not kept:
        raise ValueError(
            f"no evaluation at or before update {steps}; evaluations at {run['updates']}"
        )
    return float(kept[-1])


def flushed_accuracy(run: dict[str, Any]) -> float:
    """Test accuracy after the final flush (summary); chance for a diverged run."""
    if run["diverged"]:
        return float(run["chance"])
    return float(run["summary"]["final_test_accuracy"])


def staleness_of(run: dict[str, Any]) -> dict[str, Any] | None:
    """The server's staleness summary (mean, max, histogram), None for a diverged run."""
    return None if run["summary"] is None else run["summary"]["staleness"]
