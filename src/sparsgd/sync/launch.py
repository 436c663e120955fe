"""Start P workers on one machine, or join a ``torchrun`` launch, and never hang on a crash.

Two ways in, one worker function ``target(ctx: WorkerContext, payload)``:

1. ``torchrun`` (one machine or many): the environment names this process. ``RANK``,
   ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` (and ``LOCAL_RANK`` for the GPU) are read,
   the process group is joined with ``init_method="env://"`` and ``target`` runs here.
   torchrun itself stops the other workers when one fails.
2. ``launch`` spawns P processes itself:
   (1) the parent opens a ``TCPStore`` on 127.0.0.1 with port 0, so the operating system picks
       a free port and no other program can take it between choosing and binding;
   (2) P children (``spawn`` start method) join the group through that store: gloo on CPU,
       NCCL when the device is CUDA (GPU ``rank % device_count``);
   (3) the parent polls the children; when one exits non-zero it waits a moment for the
       others' errors, terminates the rest (SIGTERM, then SIGKILL) and raises
       :class:`WorkerFailed` with the traceback of the first rank that failed.

Every collective also has a timeout (``timeout_s``), so a lost peer fails instead of waiting.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.connection
import os
import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

import torch
import torch.distributed as dist
import torch.multiprocessing as torch_mp

__all__ = [
    "TORCHRUN_VARIABLES",
    "DistEnv",
    "WorkerContext",
    "WorkerFailed",
    "backend_for",
    "launch",
    "run_under_torchrun",
    "torchrun_env",
]

logger = logging.getLogger(__name__)

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
POLL_S = 0.2  # how often the parent looks at its children
GRACE_S = 2.0  # after a failure: time for the other ranks to report their own errors
KILL_AFTER_S = 5.0  # SIGTERM, then SIGKILL after this long
LOCALHOST = "127.0.0.1"
FAILURE_KEY = "sparsgd/failures"

P = TypeVar("P")


class WorkerFailed(RuntimeError):
    """A worker process raised or died; the message carries its traceback."""

    def __init__(self, message: str, rank: int, exit_code: int | None) -> None:
        super().__init__(message)
        self.rank = rank
        self.exit_code = exit_code


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a ``torchrun`` launch."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int


@dataclass(frozen=True)
class WorkerContext:
    """What a worker function is told about itself; the default process group is joined."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str
    launched_by: str  # "sparsgd" | "torchrun"


def _env_int(environ: Mapping[str, str], name: str) -> int:
    value = environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer; got {value!r}") from None


def torchrun_env(environ: Mapping[str, str] | None = None) -> DistEnv | None:
    """The launch described by ``RANK``/``WORLD_SIZE``/... or ``None`` when they are absent."""
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


def _device_for(device: str, local_rank: int) -> torch.device:
    if not device.startswith("cuda"):
        return torch.device(device)
    if not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for, but torch sees no CUDA GPU")
    index = local_rank % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def run_under_torchrun(
    target: Callable[[WorkerContext, P], None], payload: P, device: str, timeout_s: float
) -> None:
    """Join the group torchrun describes and run ``target`` in this process."""
    env = torchrun_env()
    if env is None:
        raise RuntimeError("run_under_torchrun needs RANK and WORLD_SIZE; start with torchrun")
    torch_device = _device_for(device, env.local_rank)
    backend = backend_for(device)
    dist.init_process_group(backend, init_method="env://", timeout=timedelta(seconds=timeout_s))
    ctx = WorkerContext(env.rank, env.world_size, env.local_rank, torch_device, backend, "torchrun")
    try:
        target(ctx, payload)
    finally:
        dist.destroy_process_group()


@dataclass(frozen=True)
class _Spawned(Generic[P]):
    """Everything a spawned child needs (pickled once per child)."""

    target: Callable[[WorkerContext, P], None]
    payload: P
    world_size: int
    store_port: int
    device: str
    timeout_s: float
    threads: int
    setup: Callable[[int], None] | None


def _child(index: int, job: _Spawned[Any]) -> None:
    """Body of spawned worker ``index``: join the group, run the target, leave the group."""
    torch.set_num_threads(job.threads)
    if job.setup is not None:
        job.setup(index)
    torch_device = _device_for(job.device, index)
    backend = backend_for(job.device)
    timeout = timedelta(seconds=job.timeout_s)
    store = dist.TCPStore(LOCALHOST, job.store_port, job.world_size, False, timeout=timeout)
    dist.init_process_group(
        backend, store=store, rank=index, world_size=job.world_size, timeout=timeout
    )
    ctx = WorkerContext(index, job.world_size, index, torch_device, backend, "sparsgd")
    try:
        job.target(ctx, job.payload)
    except BaseException:
        # the order of failures, counted before this rank's sockets close: a peer that fails
        # because this rank vanished gets a later number, so the parent reports the cause
        with contextlib.suppress(RuntimeError, OSError):  # a lost store must not hide the error
            store.set(f"{FAILURE_KEY}/{index}", str(store.add(FAILURE_KEY, 1)))
        raise
    finally:
        dist.destroy_process_group()


def launch(
    target: Callable[[WorkerContext, P], None],
    payload: P,
    workers: int,
    *,
    device: str = "cpu",
    timeout_s: float = 300.0,
    setup: Callable[[int], None] | None = None,
) -> None:
    """Run ``target(ctx, payload)`` on ``workers`` new processes; raise if any of them fails.

    ``target``, ``payload`` and ``setup`` must be picklable (module-level functions, data).
    ``setup(rank)`` runs first in every child (logging configuration, for instance).
    Each child uses ``cpu_count // workers`` threads (at least one).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0; got {timeout_s}")
    timeout = timedelta(seconds=timeout_s)
    # (1) the store: port 0 lets the OS choose a free port; the parent keeps it open
    store = dist.TCPStore(LOCALHOST, 0, workers, True, timeout=timeout, wait_for_workers=False)
    threads = max(1, (os.cpu_count() or 1) // workers)
    job = _Spawned(target, payload, workers, store.port, device, timeout_s, threads, setup)
    # (2) the children
    context = torch_mp.start_processes(_child, args=(job,), nprocs=workers, join=False)
    # (3) watch them
    try:
        _watch(context.processes, context.error_files, store)
    except KeyboardInterrupt:
        _stop_all(context.processes)  # Ctrl-C: no worker outlives the parent
        raise


def _watch(processes: list[Any], error_files: list[str], store: dist.TCPStore) -> None:
    """Wait for every child; on the first failure stop the others and raise its traceback."""
    running = {p.sentinel: rank for rank, p in enumerate(processes)}
    while running:
        ready = multiprocessing.connection.wait(list(running), timeout=POLL_S)
        failed = []
        for sentinel in ready:
            rank = running.pop(sentinel)
            processes[rank].join()
            if processes[rank].exitcode != 0:
                failed.append(rank)
        if failed:
            stopped = _stop_all(processes)
            ranks = _first_failed(failed, stopped, processes, store)
            raise _failure(ranks, processes, error_files)


def _first_failed(
    exited: list[int], stopped: set[int], processes: list[Any], store: dist.TCPStore
) -> list[int]:
    """Failed ranks (not those stopped here), the one that raised first in front."""
    failed = [
        r for r, p in enumerate(processes) if p.exitcode not in (0, None) and r not in stopped
    ]

    def order(rank: int) -> tuple[int, int]:
        key = f"{FAILURE_KEY}/{rank}"
        if store.check([key]):
            return (0, int(store.get(key)))
        return (1, 0 if rank in exited else 1)  # died without raising (a signal): by exit order

    return sorted(failed, key=order)


def _stop_all(processes: list[Any]) -> set[int]:
    """Give the others a moment to fail on their own, then stop them; returns those stopped."""
    deadline = time.monotonic() + GRACE_S  # let the others write their own errors
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
    stopped = {rank for rank, p in enumerate(processes) if p.is_alive()}
    for rank in stopped:
        processes[rank].terminate()
    deadline = time.monotonic() + KILL_AFTER_S
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()
    return stopped


def _traceback_of(rank: int, processes: list[Any], error_files: list[str]) -> str:
    try:
        with open(error_files[rank], "rb") as f:
            return str(pickle.load(f))
    except (OSError, EOFError, pickle.UnpicklingError):
        code = processes[rank].exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return f"(no Python traceback: the process ended with {how})\n"


def _failure(first: list[int], processes: list[Any], error_files: list[str]) -> WorkerFailed:
    """The error of the first rank that failed, with one line for every other failed rank."""
    rank = first[0]
    message = f"worker rank {rank} failed:\n{_traceback_of(rank, processes, error_files)}"
    for r in first[1:]:
        last = _traceback_of(r, processes, error_files).strip().splitlines()[-1:]
        message += f"\n(rank {r} also failed, probably as a consequence: {' '.join(last)})"
    for path in error_files:
        if os.path.exists(path):
            os.unlink(path)
    return WorkerFailed(message, rank, processes[rank].exitcode)
