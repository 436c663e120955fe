"""The Python API behind ``sparsgd train``: check, prepare the run folder, launch, summarise.

    summary = train(SyncConfig(out="runs/a", workers=4, method="gtopk", density=0.01))
    summary = resume("runs/a", steps=2000)        # continue that run, exactly

(1) check the config and that the data can feed P workers, before any process starts;
(2) lock the run folder (:class:`sparsgd.runs.RunLock`: a second writer is refused, naming
    the holder's PID), create it (a used folder is refused unless ``overwrite``) and write
    ``config.json``; when resuming, read it back and apply the few options a resumed run may
    change (how long it runs, how it reports);
(3) run ``train_worker`` on P processes spawned here, or, under ``torchrun``, in this
    process as the rank torchrun gave it (then only rank 0 does (1)-(2) and the others
    receive rank 0's config);
(4) return ``summary.json`` (rank 0 and the spawning parent; ``{}`` on other torchrun ranks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import torch

from sparsgd.comm.launch import LaunchOptions, launch
from sparsgd.comm.worker_env import DistEnv, run_under_torchrun, torchrun_env
from sparsgd.models import ModelSpec
from sparsgd.runs import RunDir, RunDirError, RunLock, complete_summary
from sparsgd.sync.build import load_bundle
from sparsgd.sync.config import SyncConfig, check_config, check_fits_data, config_from_dict
from sparsgd.sync.trainer import TrainJob, train_worker

__all__ = ["RESUME_OVERRIDES", "check_device", "prepare", "resume", "train"]

logger = logging.getLogger(__name__)

# what a resumed run may change: how far it goes and how it reports, never the trajectory
RESUME_OVERRIDES = frozenset({"steps", "epochs", "progress", "tensorboard", "timeout_s"})


def check_device(config: SyncConfig, spawned: bool) -> None:
    """A CUDA run needs GPUs here; spawned NCCL workers need one GPU each."""
    if not config.device.startswith("cuda"):
        return
    if not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} needs a CUDA GPU, and torch sees none")
    gpus = torch.cuda.device_count()
    if spawned and config.workers > gpus:
        raise ValueError(
            f"workers must be <= the {gpus} GPU(s) of this machine with --device cuda (NCCL "
            f"allows one rank per GPU); got workers={config.workers}"
        )


def prepare(config: SyncConfig, resume: bool = False, overwrite: bool = False) -> SyncConfig:
    """Steps (1) and (2): returns the config the workers will run."""
    check_device(config, spawned=torchrun_env() is None)
    if resume:
        return config  # already merged by resume()
    check_config(config)
    bundle = load_bundle(config)
    check_fits_data(config, bundle)
    ModelSpec.of(bundle, reduced=config.reduced, hidden_size=config.hidden_size)  # model sizes
    with RunDir(config.out, overwrite=overwrite) as run:
        run.write_config(config.to_dict())
    return config


def _execute(
    config: SyncConfig,
    resume: bool,
    overwrite: bool,
    setup: Callable[[int], None] | None,
    placement: LaunchOptions | None = None,
    locked: bool = False,
) -> dict[str, Any]:
    started = time.perf_counter()
    env = torchrun_env()
    if env is not None:
        config = replace(config, workers=env.world_size)  # torchrun decides P
        if setup is not None:
            setup(env.rank)
    if env is not None and env.rank != 0:
        return _launch(config, resume, env, setup, started, placement)
    # (2) one writer: refused while another process runs the folder (resume() locked it)
    with nullcontext() if locked else RunLock(config.out):
        config = prepare(config, resume, overwrite)
        return _launch(config, resume, env, setup, started, placement)


def _launch(
    config: SyncConfig,
    resume: bool,
    env: DistEnv | None,
    setup: Callable[[int], None] | None,
    started: float,
    placement: LaunchOptions | None,
) -> dict[str, Any]:
    """Steps (3) and (4)."""
    job = TrainJob(config, resume)
    if env is not None:
        run_under_torchrun(train_worker, (job,), config.device, config.timeout_s)  # (3)
        return complete_summary(config.out, started) if env.rank == 0 else {}
    options = LaunchOptions() if placement is None else placement  # where the ranks run
    options = replace(options, device=config.device, timeout_s=config.timeout_s, setup=setup)
    launch(train_worker, config.workers, (job,), options)
    return complete_summary(config.out, started)  # (4) adds total_seconds and the outcome


def train(
    config: SyncConfig,
    *,
    overwrite: bool = False,
    setup: Callable[[int], None] | None = None,
    placement: LaunchOptions | None = None,
) -> dict[str, Any]:
    """Run ``config`` from scratch; returns its summary. ``setup(rank)`` runs in each worker;
    ``placement`` says where the ranks run (default: P local processes on 127.0.0.1; the
    network lab passes its nodes, :func:`sparsgd.lab.placement.lab_options`)."""
    return _execute(config, False, overwrite, setup, placement)


def resume(
    out: str,
    *,
    setup: Callable[[int], None] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Continue the run in ``out`` from its latest checkpoint; see :data:`RESUME_OVERRIDES`."""
    bad = sorted(set(overrides) - RESUME_OVERRIDES)
    if bad:
        raise ValueError(
            f"a resumed run keeps its config; cannot change {bad} "
            f"(may change: {sorted(RESUME_OVERRIDES)})"
        )
    env = torchrun_env()
    if env is not None and env.rank != 0:  # rank 0 reads the folder and sends the config
        return _execute(SyncConfig(out=out), True, False, setup)
    with RunLock(out):  # held from reading the config to the end of the resumed run
        config = replace(_resumable(out, overrides), out=str(out), **overrides)
        check_config(config)
        RunDir(out, resume=True).write_config(config.to_dict())
        return _execute(config, True, False, setup, locked=True)


def _resumable(out: str, overrides: dict[str, Any]) -> SyncConfig:
    """The config of the sync run in ``out``, or an error naming its mode and step."""
    run = RunDir(out, resume=True)
    record = run.read_config()
    mode = record.get("mode", "sync")
    if mode != "sync":
        raise RunDirError(
            f"cannot resume {out} with --mode sync: it holds a --mode {mode} run "
            f"(resume it with --mode {mode} --resume {out})"
        )
    step = run.latest_step()
    if step is None:
        raise RunDirError(
            f"cannot resume {out} (--mode sync): it holds no checkpoint (the run never saved one)"
        )
    finished = (run.path / "summary.json").is_file() and run.read_summary().get("steps") == step
    if finished and "steps" not in overrides and "epochs" not in overrides:
        raise RunDirError(
            f"the --mode sync run in {out} already finished at step {step}; pass --steps N "
            "(N > that) or a larger --epochs to continue it"
        )
    if overrides.get("steps") is not None and overrides["steps"] <= step:
        raise RunDirError(
            f"cannot resume {out} (--mode sync) at step {step} with --steps "
            f"{overrides['steps']}: the run is already there"
        )
    return config_from_dict({k: v for k, v in record.items() if k != "mode"})
