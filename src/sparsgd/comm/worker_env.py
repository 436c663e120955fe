"""What a worker knows about itself, and the ``torchrun`` way in.

Every worker function has one signature, ``fn(ctx: WorkerContext, *args)``, whoever started the
process: :mod:`sparsgd.comm.launch` (``ctx.launched_by == "sparsgd"``) or ``torchrun``
(``"torchrun"``). When ``fn`` runs, the default process group is joined.

Under ``torchrun`` (one machine or many) the environment names this process:
(1) ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` (and ``LOCAL_RANK`` for the GPU)
    are read and checked;
(2) the group is joined with ``init_method="env://"``: gloo on CPU, NCCL on CUDA (GPU
    ``LOCAL_RANK % device_count``), every collective bounded by ``timeout_s``;
(3) ``fn`` runs here and its result is returned; the group is left even when ``fn`` raised.
torchrun itself stops the other workers when one fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "TORCHRUN_VARIABLES",
    "DistEnv",
    "WorkerContext",
    "backend_for",
    "device_for",
    "run_under_torchrun",
    "torchrun_env",
]

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class WorkerContext:
    """What a worker function is told about itself; the default process group is joined."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str
    launched_by: str  # "sparsgd" | "torchrun"
    store: dist.Store | None = None  # the launch's rendezvous store (None under torchrun)


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a ``torchrun`` launch."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int


def _env_int(environ: Mapping[str, str], name: str) -> int:
    value = environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer; got {value!r}") from None


def torchrun_env(environ: Mapping[str, str] | None = None) -> DistEnv | None:
    """(1) The launch described by ``RANK``/``WORLD_SIZE``/... or ``None`` when they are absent."""
    environ = os.environ if environ is None else environ
    if "RANK" not in environ and "WORLD_SIZE" not in environ:
        return None
    missing = [name for name in TORCHRUN_VARIABLES if name not in environ and name != "LOCAL_RANK"]
    if missing:
        raise ValueError(
            f"a torchrun launch needs {', '.join(TORCHRUN_VARIABLES[:2] + TORCHRUN_VARIABLES[3:])}"
            f"; missing {', '.join(missing)} (start with torchrun, or unset RANK and WORLD_SIZE)"
        )
    env = DistEnv(
        rank=_env_int(environ, "RANK"),
        world_size=_env_int(environ, "WORLD_SIZE"),
        local_rank=_env_int(environ, "LOCAL_RANK") if "LOCAL_RANK" in environ else 0,
        master_addr=environ["MASTER_ADDR"],
        master_port=_env_int(environ, "MASTER_PORT"),
    )
    if not 0 <= env.rank < env.world_size:
        raise ValueError(f"RANK must be in [0, WORLD_SIZE={env.world_size}); got {env.rank}")
    return env


def backend_for(device: str) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if device.startswith("cuda") else "gloo"


def device_for(device: str, local_rank: int) -> torch.device:
    """The device of the worker with ``local_rank``; CUDA: GPU ``local_rank % device_count``."""
    if not device.startswith("cuda"):
        return torch.device(device)
    if not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for, but torch sees no CUDA GPU")
    index = local_rank % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def run_under_torchrun(
    fn: Callable[..., Any], args: tuple[Any, ...], device: str, timeout_s: float
) -> Any:
    """Join the group torchrun describes, run ``fn(ctx, *args)`` here and return its result."""
    env = torchrun_env()  # (1)
    if env is None:
        raise RuntimeError("run_under_torchrun needs RANK and WORLD_SIZE; start with torchrun")
    torch_device = device_for(device, env.local_rank)
    backend = backend_for(device)
    dist.init_process_group(  # (2)
        backend, init_method="env://", timeout=timedelta(seconds=timeout_s)
    )
    ctx = WorkerContext(env.rank, env.world_size, env.local_rank, torch_device, backend, "torchrun")
    try:
        return fn(ctx, *args)  # (3)
    finally:
        dist.destroy_process_group()
