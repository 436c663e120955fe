"""``--mode async``: one server process and W worker processes on :mod:`sparsgd.comm.launch`.

    run = AsyncRun(cfg, problem, out)      # checks only; nothing started yet
    run.start()                            # (1) W + 1 ranks on the launcher
    run.worker_pids                        # e.g. for a test that kills one with a signal
    summary = run.wait()                   # (2) wait for the server; returns out/summary.json

(1) Rank 0 serves, ranks 1..W work (gloo; every receive has ``cfg.timeout_s``); the workers read
the version to start from in the launcher's store, where the server puts it. (2) Unlike
synchronous training, a worker that dies does not stop the run: the server notices, records it
and goes on, so only rank 0 is ``required``. The run fails (:class:`WorkerFailed` for rank 0,
with the server's traceback) only if the server fails; then the workers are stopped. Workers
still running ``LINGER_S`` after the server ended are stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.server import START_VERSION_KEY, serve
from sparsgd.asynchronous.worker import run_worker
from sparsgd.comm.launch import Group, LaunchOptions, WorkerContext
from sparsgd.comm.processes import Child
from sparsgd.runs import RunDir, RunDirError, RunLock, complete_summary
from sparsgd.runs.run_dir import LOCK_FILE
from sparsgd.worker.problem import Problem

__all__ = ["LINGER_S", "AsyncRun", "run_async"]

logger = logging.getLogger(__name__)
LINGER_S = 10.0  # workers still alive this long after the server ended are stopped
SERVER = 0


@dataclass(frozen=True)
class _Job:
    cfg: AsyncConfig
    problem: Problem
    out: str
    resume: bool
    overwrite: bool


def _process(ctx: WorkerContext, job: _Job) -> None:
    """Body of rank ``ctx.rank``: serve (0) or work (1..W)."""
    if ctx.store is None:
        raise RuntimeError("an asynchronous run needs the launcher's store; start it with AsyncRun")
    if ctx.rank == SERVER:
        serve(job.cfg, job.problem, job.out, job.resume, ctx.store, job.overwrite)
    else:
        start = int(ctx.store.get(START_VERSION_KEY))
        run_worker(job.cfg, job.problem, ctx.rank - 1, restart=start)


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
        used = folder.is_dir() and any(p.name != LOCK_FILE for p in folder.iterdir())
        if used and not (resume or overwrite):  # refused before any process starts
            raise RunDirError(
                f"run folder {folder} is not empty; pass --resume to continue that run "
                "or --overwrite to replace its run files"
            )
        problem.check(cfg.workers)  # data, model, worker count: refused before any process
        job = _Job(cfg, problem, str(out), resume, overwrite)
        options = LaunchOptions(timeout_s=cfg.timeout_s, required=(SERVER,), linger_s=LINGER_S)
        self.out = str(out)
        self._group = Group(_process, cfg.workers + 1, (job,), options)

    def start(self) -> None:
        """(1) Start the server and the workers."""
        self._group.start()

    @property
    def processes(self) -> list[Child]:
        """Rank 0 (the server), then workers 0..W-1; ``exitcode`` once they ended."""
        if not self._group.children:
            raise RuntimeError("start() the run first")
        return list(self._group.children)

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of workers 0..W-1 (ranks 1..W)."""
        return [p.pid for p in self.processes[1:]]

    def wait(self, timeout_s: float | None = None) -> dict[str, Any]:
        """(2) Wait for the server (at most ``timeout_s``); returns the summary it wrote."""
        self._group.wait(timeout_s)
        with RunDir(self.out, resume=True) as run_dir:
            return run_dir.read_summary()


def run_async(
    cfg: AsyncConfig,
    problem: Problem,
    out: str | Path,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Start the processes of ``cfg`` and wait for the summary (total time, outcome added)."""
    started = time.perf_counter()
    with RunLock(out):  # one writer: refused while another process runs the folder
        run = AsyncRun(cfg, problem, out, resume, overwrite)
        run.start()
        run.wait()
        return complete_summary(out, started)
