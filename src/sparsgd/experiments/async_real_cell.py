"""One run of ``async-real`` as a cell of :class:`~sparsgd.experiments.cells.CellStore`.

A cell is one (method, source, seed). Sources, with W workers slowed s_1..s_W times:

    (1) real         :class:`~sparsgd.asynchronous.real_run.AsyncRun`: one server and W worker
                     processes (gloo on 127.0.0.1); staleness is whatever the speeds make it
    (2) sim-workers  W simulated workers with the same slow-downs and a constant compute time
                     T calibrated from the real cell of the same method and seed, which applied
                     n updates in t seconds; workers of relative speeds 1/s_w apply
                     sum_w 1/s_w updates per T, so  T = (t / n) sum_w 1/s_w
    (3) sim-drawn    one simulated worker, tau ~ Poisson(the real cell's mean tau)

so a simulated cell's spec holds the number it took from its real cell (T or the mean tau),
and it runs again when that cell does. The result is small: the server's staleness summary,
the evaluations (update, test accuracy), whether the run diverged, chance = 1 / classes, and
the accuracy after the fixed number of updates (:func:`~.async_setup.accuracy_after`, chance
for a run that diverged), the score a verdict pairs.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import replace
from typing import Any

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.real_run import AsyncRun
from sparsgd.experiments.async_setup import (
    METHODS,
    LoadedProblem,
    accuracy_after,
    eval_curve,
    simulate_run,
)
from sparsgd.experiments.datasets import data_dir_for, load_bundle
from sparsgd.runs import judge

__all__ = ["CELL_VERSION", "SOURCES", "compute_time", "real_spec", "run_cell", "sim_specs"]

CELL_VERSION = 1  # raise when run_cell changes what a stored result means
SOURCES = ("real", "sim-workers", "sim-drawn")
SUMMARY_KEYS = ("staleness", "steps", "wall_seconds", "final_test_accuracy")


def real_spec(
    *,
    method: str,
    seed: int,
    model: str,
    dataset: str,
    slowdown: tuple[float, ...],
    steps: int,
    lr: float,
    batch_size: int,
    test_limit: int,
    evals: int,
    timeout_s: float,
) -> dict[str, Any]:
    """The spec of source (1): the method's settings spelled out, so a changed one reruns."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}; got {method!r}")
    m = METHODS[method]
    every = max(1, steps // evals)
    return {
        "version": CELL_VERSION,
        "source": "real",
        "method": method,
        **{"compressor": m.compressor, "density": m.density, "memory": m.memory},
        "policy": m.policy,
        **{"model": model, "dataset": dataset, "test_limit": test_limit, "seed": seed},
        **{"slowdown": list(slowdown), "steps": steps, "lr": float(lr)},
        **{"batch_size": batch_size, "eval_every": every, "timeout_s": float(timeout_s)},
    }


def compute_time(slowdown: list[float], real: dict[str, Any]) -> float:
    """(2): T = (t / n) sum_w 1 / s_w from the real result's summary."""
    s = real["summary"]
    return s["wall_seconds"] / max(1, s["steps"]) * sum(1.0 / w for w in slowdown)


def sim_specs(real: dict[str, Any], result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The specs of (2) and (3) from the real cell's spec and result; {} without a summary."""
    if result["summary"] is None:
        return {}
    t = compute_time(real["slowdown"], result)
    mean_tau = result["summary"]["staleness"]["mean"]
    return {
        "sim-workers": {**real, "source": "sim-workers", "worker_time": f"constant:{t:.6g}"},
        "sim-drawn": {**real, "source": "sim-drawn", "staleness": f"poisson:{mean_tau:.6g}"},
    }


def _config(spec: dict[str, Any]) -> AsyncConfig:
    base = AsyncConfig(
        mode="async" if spec["source"] == "real" else "sim",
        workers=len(spec["slowdown"]),
        steps=spec["steps"],
        lr=spec["lr"],
        batch_size=spec["batch_size"],
        seed=spec["seed"],
        compressor=spec["compressor"],
        density=spec["density"],
        memory=spec["memory"],
        policy=spec["policy"],
        slowdown=tuple(spec["slowdown"]),
        eval_every=spec["eval_every"],
        log_every=spec["eval_every"],
        timeout_s=min(spec["timeout_s"], 300.0),  # one collective; the run's own limit below
    )
    if spec["source"] == "sim-workers":
        return replace(base, worker_time=spec["worker_time"])  # (2)
    if spec["source"] == "sim-drawn":
        return replace(base, workers=1, slowdown=None, staleness=spec["staleness"])  # (3)
    return base


@functools.lru_cache(maxsize=2)
def _classes(dataset: str, data_dir: str | None) -> int:
    return load_bundle(dataset, data_dir).num_classes


def _real(cfg: AsyncConfig, problem: LoadedProblem, folder: str, timeout_s: float) -> dict:
    """(1) one real run into ``folder``: its summary and accuracy curve."""
    run = AsyncRun(cfg, problem, folder, overwrite=True)
    run.start()
    summary = run.wait(timeout_s)
    updates, accuracy = eval_curve(folder)
    diverged = judge(summary).label == "diverged"  # exploded: its accuracy counts as chance
    return {"summary": summary, "updates": updates, "accuracy": accuracy, "diverged": diverged}


def run_cell(spec: dict[str, Any], data_dir: str | None = None) -> dict[str, Any]:
    """Run the cell ``spec`` (module docstring) in a scratch folder; its small result."""
    if spec["source"] not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}; got {spec['source']!r}")
    folder_dir = data_dir_for(spec["dataset"], data_dir)
    problem = LoadedProblem(
        spec["model"], spec["dataset"], folder_dir, seed=spec["seed"], test_limit=spec["test_limit"]
    )
    cfg = _config(spec)
    with tempfile.TemporaryDirectory(prefix="sparsgd-async-cell-") as scratch:
        folder = f"{scratch}/run"
        if spec["source"] == "real":
            run = _real(cfg, problem, folder, spec["timeout_s"])
        else:
            run = simulate_run(cfg, problem, folder)
    summary = run["summary"]  # None when a simulation stopped on a non-finite value
    result = {
        "summary": None if summary is None else {k: summary.get(k) for k in SUMMARY_KEYS},
        "updates": run["updates"],
        "accuracy": run["accuracy"],
        "diverged": bool(run["diverged"]),
        "chance": 1.0 / _classes(spec["dataset"], folder_dir),
    }
    result["score"] = accuracy_after(result, spec["steps"])
    return result
