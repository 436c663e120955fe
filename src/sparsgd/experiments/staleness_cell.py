"""One cell of the ``staleness`` study: a simulated ASGD run, scored on held-out and test data.

    result = run_cell(spec, data_dir="/work/shared/data")     # spec: see cell_spec()

A cell is one (staleness, method, learning rate, seed). The run:

    (1) data     the training set less its last ``valid_size`` samples trains; those held-out
                 samples score the model for the choice of learning rate; the test set is
                 scored for the report only (the choice never reads it)
    (2) run      one worker, tau ~ Poisson(S) per update (S = 0: synchronous SGD, bit for
                 bit), the server's own update code (:func:`sparsgd.sim.sim_run.build_simulation`),
                 ``steps`` updates of ``batch_size`` samples
    (3) curves   every ``eval_every`` updates: accuracy on the held-out split and on the test set
    (4) scores   the evaluation at update ``steps``, before the worker flushes its residual (a
                 flush applies all unsent gradient mass in one step, which no update of the
                 method itself does)
    (5) diverged the non-finite checks raised, the server halted on refused pushes before
                 update ``steps``, or the model stopped being finite: both scores are then
                 chance, 1 / classes (a model that stopped being finite predicts one class),
                 so a method that diverges in some seeds does not look as good as the others

``run_cell`` is a module-level function of the spec alone (plus the data folder), so the
study's :class:`~sparsgd.experiments.cells.CellStore` can run it in a pool of processes; each
process loads a data set once (``_BUNDLES``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from typing import Any

import torch
from torch.utils.data import TensorDataset

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.compress.checks import NonFiniteError
from sparsgd.data import DatasetBundle
from sparsgd.experiments.async_setup import METHODS, LoadedProblem
from sparsgd.experiments.datasets import data_dir_for, load_bundle
from sparsgd.runs import NonFiniteRecordError
from sparsgd.sim.sim_run import build_simulation

__all__ = ["CELL_VERSION", "cell_spec", "run_cell", "split_valid"]

logger = logging.getLogger(__name__)

CELL_VERSION = 1  # bump when run_cell changes what a stored result means
_BUNDLES: dict[tuple[str, str | None, int], DatasetBundle] = {}


def cell_spec(
    *,
    model: str,
    dataset: str,
    valid_size: int,
    method: str,
    lr: float,
    mean_staleness: int,
    steps: int,
    batch_size: int,
    eval_every: int,
    seed: int,
) -> dict[str, Any]:
    """The JSON-able spec of one cell: everything its result depends on (the method's
    compressor, density, memory and policy spelled out, so a changed method is a new cell)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}; got {method!r}")
    for name, value in (("steps", steps), ("eval_every", eval_every), ("valid_size", valid_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    if steps % eval_every:
        raise ValueError(
            f"steps must be a multiple of eval_every (the score is the evaluation at update "
            f"steps); got steps={steps}, eval_every={eval_every}"
        )
    if not (isinstance(mean_staleness, int) and mean_staleness >= 0):
        raise ValueError(f"mean_staleness must be an integer >= 0; got {mean_staleness!r}")
    m = METHODS[method]
    return {
        "version": CELL_VERSION,
        "model": model,
        "dataset": dataset,
        "valid_size": valid_size,
        "method": method,
        "compressor": m.compressor,
        "density": m.density,
        "memory": m.memory,
        "policy": m.policy,
        "lr": float(lr),
        "staleness": f"poisson:{mean_staleness}",
        "steps": steps,
        "batch_size": batch_size,
        "eval_every": eval_every,
        "seed": seed,
    }


def split_valid(bundle: DatasetBundle, valid_size: int) -> DatasetBundle:
    """(1): ``bundle`` whose last ``valid_size`` training samples became its ``valid`` split."""
    inputs, targets = bundle.train.tensors
    n = len(targets)
    if not 0 < valid_size < n:
        raise ValueError(
            f"valid_size must be in [1, {n - 1}] (the training set has {n} samples); "
            f"got {valid_size}"
        )
    keep = n - valid_size
    return replace(
        bundle,
        train=TensorDataset(inputs[:keep], targets[:keep]),
        valid=TensorDataset(inputs[keep:], targets[keep:]),
    )


def _bundle(dataset: str, data_dir: str | None, valid_size: int) -> DatasetBundle:
    key = (dataset, data_dir_for(dataset, data_dir), valid_size)
    if key not in _BUNDLES:
        _BUNDLES[key] = split_valid(load_bundle(dataset, data_dir), valid_size)
    return _BUNDLES[key]


def _config(spec: dict[str, Any]) -> AsyncConfig:
    return AsyncConfig(
        mode="sim",
        workers=1,
        staleness=spec["staleness"],
        steps=spec["steps"],
        lr=spec["lr"],
        batch_size=spec["batch_size"],
        seed=spec["seed"],
        compressor=spec["compressor"],
        density=spec["density"],
        memory=spec["memory"],
        policy=spec["policy"],
        eval_every=spec["eval_every"],
        log_every=spec["steps"],
    )


def run_cell(spec: dict[str, Any], data_dir: str | None = None) -> dict[str, Any]:
    """Steps (1)-(5) of the module docstring for ``spec``; a JSON-able result."""
    cpu0 = time.process_time()
    bundle = _bundle(spec["dataset"], data_dir, spec["valid_size"])
    problem = LoadedProblem(spec["model"], spec["dataset"], bundle=bundle, seed=spec["seed"])
    cfg = _config(spec)
    core, sim = build_simulation(cfg, problem, None, bundle)
    scorer = problem.build_model(bundle)
    valid, test = bundle.valid.tensors, bundle.test.tensors
    curve: dict[str, list[float]] = {"updates": [], "valid": [], "test": []}

    def evaluate(x: torch.Tensor) -> tuple[float, float]:  # (3)
        valid_acc, valid_loss = scorer.evaluate(x, *valid)
        test_acc, _ = scorer.evaluate(x, *test)
        curve["updates"].append(core.state.version)
        curve["valid"].append(valid_acc)
        curve["test"].append(test_acc)
        return valid_acc, valid_loss  # what the server records as its evaluation

    core.evaluate = evaluate
    reason = None
    try:
        sim.run()
    except (NonFiniteError, NonFiniteRecordError) as err:
        reason = f"non-finite: {err}"
    except RuntimeError as err:  # the drawn simulator gives up after too many skipped steps
        if "not finite" not in str(err):
            raise
        reason = str(err)
    chance = 1.0 / bundle.num_classes
    scored = spec["steps"] in curve["updates"]
    if reason is None and not scored:
        reason = f"the server stopped at update {core.state.version} of {spec['steps']}"
    if reason is None and not bool(torch.isfinite(core.state.x).all()):
        reason = "the model stopped being finite"
    at = curve["updates"].index(spec["steps"]) if scored else None  # (4)
    diverged = reason is not None  # (5)
    tau = core.state.staleness_summary()
    return {
        "valid_accuracy": chance if diverged else curve["valid"][at],
        "test_accuracy": chance if diverged else curve["test"][at],
        "diverged": diverged,
        "reason": reason,
        "chance": chance,
        "epochs": spec["steps"] * spec["batch_size"] / bundle.num_train,
        "curve": {k: [_finite(v) for v in vs] for k, vs in curve.items()},
        "tau_mean": tau["mean"],
        "tau_max": tau["max"],
        "cpu_seconds": time.process_time() - cpu0,
    }


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None
