"""``--mode async``: start one server process and W worker processes on this machine.

    run = AsyncRun(cfg, problem, out)      # nothing started yet
    run.start()                            # (1) store on a free port, (2) spawn W + 1 processes
    run.worker_pids                        # e.g. for a test that kills one with a signal
    summary = run.wait()                   # (3) watch the server; returns out/summary.json

(1) The parent opens a ``TCPStore`` on 127.0.0.1 with port 0, so the operating system picks a
free port that nobody can take before the children join. (2) Rank 0 serves, ranks 1..W
work (gloo; every receive has ``cfg.timeout_s``). (3) Unlike synchronous training, a worker
that dies does not stop the run: the server notices, records it and goes on. The run fails
(:class:`AsyncRunFailed`, with the server's traceback) only if the server fails; then the
workers are stopped. Workers still running after the server ended get a short grace period,
then are stopped.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as torch_mp

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.problem import Problem
from sparsgd.asynchronous.server import START_VERSION_KEY, serve
from sparsgd.asynchronous.worker import run_worker
from sparsgd.runs import RunDir, RunDirError, complete_summary

__all__ = ["AsyncRun", "AsyncRunFailed", "run_async"]

logger = logging.getLogger(__name__)
LOCALHOST = "127.0.0.1"
POLL_S = 0.1
GRACE_S = 10.0  # workers still alive this long after the server ended are stopped


class AsyncRunFailed(RuntimeError):
    """The server process failed; the message carries its traceback."""


@dataclass(frozen=True)
class _Job:
    cfg: AsyncConfig
    problem: Problem
    out: str
    resume: bool
    overwrite: bool
    store_port: int
    threads: int


def _process(rank: int, job: _Job) -> None:
    """Body of spawned process ``rank``: join the group, serve (0) or work (1..W), leave."""
    torch.set_num_threads(job.threads)
    world = job.cfg.workers + 1
    timeout = timedelta(seconds=job.cfg.timeout_s)
    store = dist.TCPStore(LOCALHOST, job.store_port, world, False, timeout=timeout)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world, timeout=timeout)
    try:
        if rank == 0:
            serve(job.cfg, job.problem, job.out, job.resume, store, job.overwrite)
        else:
            start = int(store.get(START_VERSION_KEY))
            run_worker(job.cfg, job.problem, rank - 1, restart=start)
    finally:
        dist.destroy_process_group()


class AsyncRun:
    """One real asynchronous run: :meth:`start`, then :meth:`wait`."""

    def __init__(
        self,
        cfg: AsyncConfig,
        problem: Problem,
        out: str | Path,
        resume: bool = False,
        overwrite: bool = False,
    ) -> None:
        if cfg.mode != "async":
            raise ValueError(f"AsyncRun needs cfg.mode 'async'; got {cfg.mode!r}")
        folder = Path(out)
        used = folder.is_dir() and any(folder.iterdir())
        if used and not (resume or overwrite):  # refused before any process starts
            raise RunDirError(
                f"run folder {folder} is not empty; pass --resume to continue that run "
                "or --overwrite to replace its run files"
            )
        problem.check(cfg.workers)  # data, model, worker count: refused before any process
        self.cfg, self.problem, self.out = cfg, problem, str(out)
        self.resume, self.overwrite = resume, overwrite
        self._context: Any = None
        self._store: dist.TCPStore | None = None

    def start(self) -> None:
        timeout = timedelta(seconds=self.cfg.timeout_s)
        world = self.cfg.workers + 1
        self._store = dist.TCPStore(  # (1)
            LOCALHOST, 0, world, True, timeout=timeout, wait_for_workers=False
        )
        threads = max(1, (os.cpu_count() or 1) // world)
        job = _Job(
            self.cfg, self.problem, self.out, self.resume, self.overwrite, self._store.port, threads
        )
        self._context = torch_mp.start_processes(  # (2)
            _process, args=(job,), nprocs=world, join=False, start_method="spawn"
        )

    @property
    def processes(self) -> list[Any]:
        if self._context is None:
            raise RuntimeError("start() the run first")
        return list(self._context.processes)

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of workers 0..W-1 (ranks 1..W)."""
        return [p.pid for p in self.processes[1:]]

    def wait(self, timeout_s: float | None = None) -> dict[str, Any]:
        """(3) Wait for the server; returns the summary it wrote."""
        server = self.processes[0]
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while server.is_alive():
            if deadline is not None and time.monotonic() > deadline:
                self._stop_all()
                raise AsyncRunFailed(f"the run did not finish within {timeout_s} s")
            server.join(POLL_S)
        if server.exitcode != 0:
            self._stop_all()
            raise AsyncRunFailed(f"the server failed:\n{self._traceback(0)}")
        self._finish_workers()
        with RunDir(self.out, resume=True) as run_dir:
            return run_dir.read_summary()

    def _finish_workers(self) -> None:
        deadline = time.monotonic() + GRACE_S
        for rank, p in enumerate(self.processes[1:], start=1):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                logger.warning(
                    "worker rank %d still running after the server ended; stopping it", rank
                )
                p.kill()
                p.join()
            elif p.exitcode != 0:
                logger.warning("worker rank %d ended with exit code %s", rank, p.exitcode)

    def _stop_all(self) -> None:
        for p in self.processes:
            if p.is_alive():
                p.kill()
        for p in self.processes:
            p.join()

    def _traceback(self, rank: int) -> str:
        try:
            with open(self._context.error_files[rank], "rb") as f:
                return str(pickle.load(f))
        except (OSError, EOFError, pickle.UnpicklingError):
            code = self.processes[rank].exitcode
            return f"(no Python traceback: exit code {code})"


def run_async(
    cfg: AsyncConfig,
    problem: Problem,
    out: str | Path,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Start the processes of ``cfg`` and wait for the summary (total time, outcome added)."""
    started = time.perf_counter()
    run = AsyncRun(cfg, problem, out, resume, overwrite)
    run.start()
    run.wait()
    return complete_summary(out, started)
