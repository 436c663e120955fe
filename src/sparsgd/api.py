"""Train one's own model on one's own data, in any of the three modes, from Python.

    summary = sparsgd.train(SyncConfig(out="runs/a", workers=2, method="gtopk", density=0.05),
                            model=Net, train_set=train, test_set=test)
    summary = sparsgd.train(AsyncConfig(mode="sim", workers=8), model=Net, train_set=train,
                            test_set=test, out="runs/b")

(1) ``model`` is a zero-argument callable returning an ``nn.Module`` (a class or a function
defined at module level, so that worker processes can unpickle it); every rank calls it under
the same seed and starts from the same parameters. The Datasets are classification data:
items ``(x, y)`` with an integer label; they are read once, here, into tensors
(:class:`sparsgd.worker.UserProblem`), and sharded, batched and scored as the built-in data
sets are. (2) The config picks the mode: a :class:`~sparsgd.sync.config.SyncConfig` runs
synchronous gTop-k / top-k / dense S-SGD on ``config.workers`` spawned processes
(docs/training.md, Your own model and data); an :class:`~sparsgd.asynchronous.config.AsyncConfig`
runs the parameter server (``mode="async"``, W + 1 processes) or its simulator
(``mode="sim"``, this process). The config's own ``model`` and ``dataset`` are not used.
(3) The run folder, ``log.jsonl``, checkpoints and ``summary.json`` are those of the CLI;
the summary is returned. Such a run cannot be resumed from its folder (the data is not saved
there), and torchrun is not supported here (use ``sparsgd.sync.train`` for that).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.real_run import run_async
from sparsgd.comm.launch import LaunchOptions, launch
from sparsgd.runs import RunDir, complete_summary
from sparsgd.sim.sim_run import run_simulation
from sparsgd.sync.config import SyncConfig, check_config, check_fits_data
from sparsgd.sync.train import check_device
from sparsgd.sync.trainer import TrainJob, train_worker
from sparsgd.worker.user_problem import UserProblem

__all__ = ["train"]


def train(
    config: SyncConfig | AsyncConfig,
    *,
    model: Callable[[], nn.Module],
    train_set: Dataset,
    test_set: Dataset,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train ``model()`` on ``train_set``, score it on ``test_set``; returns the summary.

    ``out``: the run folder of an AsyncConfig run (a SyncConfig names its own, ``config.out``;
    ``mode="sim"`` may run without one). ``overwrite``: reuse a folder that holds a run.
    """
    problem = UserProblem.of(model, train_set, test_set, seed=config.seed)  # (1)
    if isinstance(config, SyncConfig):  # (2)
        if out is not None and str(out) != config.out:
            raise ValueError(f"out is config.out for a SyncConfig; got out={out!r}")
        return _train_sync(config, problem, overwrite)
    if not isinstance(config, AsyncConfig):
        raise TypeError(
            f"config must be a SyncConfig or an AsyncConfig; got {type(config).__name__}"
        )
    if config.mode == "sim":
        return run_simulation(config, problem, out, overwrite=overwrite)
    if out is None:
        raise ValueError("out (the run folder) is required with mode 'async'; got None")
    return run_async(config, problem, out, overwrite=overwrite)


def _train_sync(config: SyncConfig, problem: UserProblem, overwrite: bool) -> dict[str, Any]:
    """Check, write config.json, run ``config.workers`` ranks, return the summary (3)."""
    started = time.perf_counter()
    check_device(config, spawned=True)
    check_config(config)
    check_fits_data(config, problem.load())
    config = replace(config, model=problem.model, dataset=problem.dataset)  # what ran
    with RunDir(config.out, overwrite=overwrite) as run:
        run.write_config({**config.to_dict(), "problem": problem.to_record()})
    job = TrainJob(config, resume=False, problem=problem)
    options = LaunchOptions(device=config.device, timeout_s=config.timeout_s)
    launch(train_worker, config.workers, (job,), options)
    return complete_summary(config.out, started)
