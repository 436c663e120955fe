"""Measure the simulator's memory and per-update cost as the number of workers W grows.

For each W, a fresh Python process (so that its peak resident memory is its own) builds the
FNN-3 of the papers (784 inputs, 2 x 200 hidden units, 10 classes: d = 199,210) on a
synthetic data set of ``num_train`` samples, runs the worker-mode simulation
(:mod:`sparsgd.sim.worker_sim`) for ``steps`` server updates, and reports:

    rss_mb          peak resident memory of that process (VmHWM of /proc/self/status),
                    the whole run included: the W flushes at the end too
    update_ms       wall ms per server update between version steps/4 and steps (steady
                    state: the W first gradients and the W flushes are outside it)
    per_worker_kb   (rss_mb - peak of the same process before building the simulation) / W

Per-update cost across W (:func:`measure_update_ratio`), robust to a loaded machine: one
process builds the simulations of every W, takes each past steps/4, then advances them in
turn by ``chunk`` updates per round, so each round times every W under the same load:

    ratio_r = ms per update of W_i in round r / that of W_0 in round r       # (1)
    ratio   = median over rounds of ratio_r, with its range (min, max)       # (2)
    best    = least ms per update of W_i over the rounds / least of W_0      # (3)

(3) is each W's least loaded round: on a busy machine the closest to the unloaded cost.

The dense-push row runs the same simulation with compressor ``dense`` and memory ``none`` at
W = 1 beside a plain SGD loop of the same model (``torch.optim.SGD`` on the module, the same
batch size), in turn in one process, ``repeats`` rounds of ``steps`` updates each:
``dense_ratio`` is the median over the rounds of sim ms per update / plain ms per step.
Evaluations are off in every timed simulation (a plain loop has none; they cost the same at
any W). Intra-op threads are set to 1, what each simulated worker would have.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.sim.sim_run import build_simulation
from sparsgd.worker.batches import BatchStream
from sparsgd.worker.problem import Problem
from sparsgd.worker.seeds import generator_for

__all__ = ["measure_dense_path", "measure_sim", "measure_update_ratio", "measure_workers"]

FEATURES, CLASSES = 784, 10  # MNIST's shape: FNN-3 has 199,210 parameters
BATCH = 8  # 1024 workers x 8 samples fit a data set of 8192 (25 MB)
NO_EVAL = 2**62  # eval_every of a timed simulation: never within its steps


def _problem(num_train: int) -> Problem:
    options = (("num_classes", CLASSES), ("num_features", FEATURES), ("num_train", num_train))
    return Problem("fnn3", "synthetic", seed=0, dataset_options=options)


def _peak_rss_mb() -> float:
    """VmHWM of this process in MB (ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _config(
    workers: int, steps: int, density: float, residual_dir: str | None = None
) -> AsyncConfig:
    return AsyncConfig(
        mode="sim",
        workers=workers,
        steps=steps,
        density=density,
        lr=0.01,
        batch_size=BATCH,
        eval_every=NO_EVAL,
        residual_dir=residual_dir,
    )


def measure_workers(
    workers: int, steps: int, density: float, num_train: int, residual_dir: str | None = None
) -> dict[str, Any]:
    """One W, in this process: peak RSS and ms per computed gradient (run it in a fresh one).

    ``residual_dir``: the residuals in a file there (``--residual-dir``); ``residual_file_mb``
    is then that file's size, held by the kernel (page cache, disk), not in the RSS.
    """
    torch.set_num_threads(1)
    cfg = _config(workers, steps, density, residual_dir)
    problem = _problem(num_train)
    bundle = problem.load()
    problem.build_model(bundle)
    before = _peak_rss_mb()
    core, sim = build_simulation(cfg, problem, bundle=bundle)
    sim.advance(steps // 4)  # (1) past the start: every worker has pulled and pushed
    start, first = time.perf_counter(), core.state.version
    sim.advance(steps)  # (2) steady state: the updates between a quarter and the end
    seconds = time.perf_counter() - start
    updates = core.state.version - first
    sim.run()  # (3) the stop and the W flushes, inside the peak RSS
    rss = _peak_rss_mb()
    return {
        "workers": workers,
        "steps": steps,
        "density": density,
        "d": core.state.numel,
        "rss_mb": rss,
        "per_worker_kb": (rss - before) * 1024 / workers,
        "update_ms": seconds * 1e3 / updates,
        "residual_dir": residual_dir,
        "residual_file_mb": 0.0 if residual_dir is None else workers * core.state.numel * 4 / 2**20,
    }


def measure_sim(
    workers: list[int],
    steps: int,
    density: float,
    num_train: int,
    residual_dir: str | None = None,
) -> list[dict[str, Any]]:
    """:func:`measure_workers` for each W, each in a fresh interpreter (this one's path)."""
    rows = []
    for w in workers:
        call = f"measure_workers({w}, {steps}, {density}, {num_train}, {residual_dir!r})"
        code = "import json; from sparsgd.bench.sim import measure_workers; "
        code += f"print(json.dumps({call}))"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


class _PlainSGD:
    """torch.optim.SGD on the module and the worker's batch stream: the loop to beat."""

    def __init__(self, problem: Problem) -> None:
        bundle = problem.load()
        self.module = problem.build_model(bundle).module
        self.inputs, self.targets = bundle.train.tensors
        gen = generator_for(0, "worker", 0, "batches")
        self.stream = BatchStream(len(self.targets), BATCH, gen)
        self.opt = torch.optim.SGD(self.module.parameters(), lr=0.01)

    def steps(self, n: int) -> None:
        for _ in range(n):
            batch = self.stream.next()
            self.opt.zero_grad()
            loss = F.cross_entropy(self.module(self.inputs[batch]), self.targets[batch])
            loss.backward()
            self.opt.step()


def measure_update_ratio(
    workers: list[int],
    steps: int,
    density: float,
    num_train: int,
    chunk: int = 64,
    residual_dir: str | None = None,
) -> dict[str, Any]:
    """ms per update of each W, interleaved in rounds of ``chunk`` updates; (1)-(2) above."""
    torch.set_num_threads(1)
    problem = _problem(num_train)
    bundle = problem.load()
    sims = [
        build_simulation(_config(w, steps, density, residual_dir), problem, bundle=bundle)
        for w in workers
    ]
    for _, sim in sims:
        sim.advance(steps // 4)  # past the start: every worker has pulled and pushed
    rounds: list[list[float]] = []  # rounds[r][i]: ms per update of workers[i] in round r
    target = steps // 4
    while target + chunk <= steps:
        target += chunk
        row = []
        for core, sim in sims:
            start, first = time.perf_counter(), core.state.version
            sim.advance(target)
            row.append((time.perf_counter() - start) * 1e3 / (core.state.version - first))
        rounds.append(row)
    if not rounds:
        raise ValueError(f"steps={steps} leaves no round of chunk={chunk} after steps/4")
    n = len(workers)
    ratios = [[r[i] / r[0] for r in rounds] for i in range(n)]  # (1)
    return {
        "workers": workers,
        "rounds": len(rounds),
        "chunk": chunk,
        "update_ms": [statistics.median(r[i] for r in rounds) for i in range(len(workers))],
        "ratio": [statistics.median(x) for x in ratios],  # (2)
        "ratio_range": [[min(x), max(x)] for x in ratios],
        "best_ratio": [min(r[i] for r in rounds) / min(r[0] for r in rounds) for i in range(n)],
    }


def measure_dense_path(steps: int, repeats: int, num_train: int) -> dict[str, Any]:
    """Dense pushes at W = 1 against a plain SGD loop, in turn: ``repeats`` rounds of
    ``steps`` updates each after a warm-up of steps/4; medians over the rounds."""
    torch.set_num_threads(1)
    problem = _problem(num_train)
    cfg = replace(_config(1, (repeats + 1) * steps, 1.0), compressor="dense", memory="none")
    core, sim = build_simulation(cfg, problem)
    plain = _PlainSGD(problem)
    sim.advance(steps // 4)
    plain.steps(steps // 4)
    sim_ms, plain_ms = [], []
    for _ in range(repeats):
        start, first = time.perf_counter(), core.state.version
        sim.advance(first + steps)
        sim_ms.append((time.perf_counter() - start) * 1e3 / (core.state.version - first))
        start = time.perf_counter()
        plain.steps(steps)
        plain_ms.append((time.perf_counter() - start) * 1e3 / steps)
    ratios = [s / p for s, p in zip(sim_ms, plain_ms, strict=True)]
    return {
        "steps": steps,
        "repeats": repeats,
        "sim_ms": statistics.median(sim_ms),
        "plain_ms": statistics.median(plain_ms),
        "dense_ratio": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "best_ratio": min(sim_ms) / min(plain_ms),  # (3) each side's least loaded round
    }
