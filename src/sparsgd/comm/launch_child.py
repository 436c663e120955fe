"""One rank of a :mod:`sparsgd.comm.launch` launch: ``python -m sparsgd.comm.launch_child``.

    [PREFIX...] python -m sparsgd.comm.launch_child JOB_FILE RANK LAUNCHER_PID

A plain subprocess rather than a ``multiprocessing`` child, so that a command prefix (another
network namespace, another user) can wrap it. The rank:
(0) turns on :mod:`faulthandler`, so that a crash below Python (SIGSEGV, or SIGABRT from a
    C++ ``std::terminate``) prints every thread's Python stack to stderr before it ends;
(1) asks the kernel for SIGKILL when the launcher dies (Linux ``PR_SET_PDEATHSIG``), and exits
    at once if the launcher is already gone;
(2) reads the job file: first the launcher's import setup (``sys.path``, working folder, main
    module: what ``multiprocessing`` hands its spawned children), then the pickled
    :class:`ChildJob`, whose ``fn`` is found by module and name like any pickled function;
(3) turns SIGTERM and SIGINT into a quiet exit with code ``128 + signal``: ``fn``'s finally
    blocks run, then the process ends at once, without leaving the group (its helper threads
    may still be in a receive) and without a traceback from any thread: the launcher asked;
(4) connects to the launcher's ``TCPStore`` and joins the default group (gloo, or NCCL on CUDA),
    with ``timeout_s`` on every collective, so a lost peer raises instead of blocking;
(5) runs ``fn(ctx, *args)`` and leaves its record: the result, or the traceback with the
    wall-clock time ``fn`` raised, taken before the group closes, so that a rank failing only
    because a peer vanished is stamped after that peer;
(6) once a result is recorded, ends without the interpreter's teardown (``os._exit``, as
    ``multiprocessing``'s forked children do), after closing what nothing holds, flushing
    every file still open and the logging handlers. In the teardown a C++ thread of torch's
    left joinable could end a rank that had finished with SIGABRT ("terminate called
    without an active exception", faulthandler showing no Python frame): twice in CI, in
    2-rank runs whose results were already written, and so counted as failed.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import gc
import io
import logging
import multiprocessing.spawn
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from datetime import timedelta
from types import FrameType
from typing import NoReturn

import torch
import torch.distributed as dist

from sparsgd.comm.launch_options import ChildJob, record_path
from sparsgd.comm.processes import write_record
from sparsgd.comm.worker_env import WorkerContext, backend_for, device_for

__all__ = ["main", "run_rank"]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class _Stopped(BaseException):
    """The launcher sent SIGTERM or SIGINT."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _die_with(launcher_pid: int) -> None:
    """(1) SIGKILL this process when the launcher ends; 0: the launcher is not our parent."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if launcher_pid and os.getppid() != launcher_pid:
        raise SystemExit(1)  # the launcher died before the line above took effect


def _read_job(path: str) -> ChildJob:
    """(2) The launcher's import setup first, then the job that needs it."""
    with open(path, "rb") as f:
        multiprocessing.spawn.prepare(pickle.load(f))
        job: ChildJob = pickle.load(f)
    return job


def _quiet(args: threading.ExceptHookArgs) -> None:
    """A helper thread failing while its rank is being stopped: expected, not reported."""


def _stop(signum: int, frame: FrameType | None) -> None:
    threading.excepthook = _quiet
    raise _Stopped(signum)


def _exit_recorded() -> NoReturn:
    """(6) End a rank whose result is recorded, skipping the interpreter's teardown."""
    gc.collect()  # what nothing holds any more: open files among it close, flushing
    for obj in gc.get_objects():  # files still held: flushed, the process keeps nothing back
        # the type, not the object: isinstance reads obj.__class__, which some proxies warn on
        if issubclass(type(obj), io.IOBase) and not obj.closed:
            with contextlib.suppress(OSError, ValueError):  # a pipe whose reader left
                obj.flush()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _exit_stopped(stopped: _Stopped) -> NoReturn:
    """(3) End now: the launcher is stopping every rank, so nobody waits for this one."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + stopped.signum)


def _join_store(job: ChildJob, rank: int, timeout: timedelta) -> dist.TCPStore:
    """The launcher's store; or, with ``rank0_store``, rank 0 opens it on its own address."""
    if not (job.rank0_store and rank == 0):
        return dist.TCPStore(job.address, job.port, job.world_size, False, timeout=timeout)
    listener = socket.create_server((job.address, job.port), backlog=max(128, job.world_size))
    return dist.TCPStore(
        job.address,
        job.port,
        job.world_size,
        True,
        timeout=timeout,
        wait_for_workers=False,
        master_listen_fd=listener.detach(),  # bound to this address only, never the wildcard
    )


def run_rank(job: ChildJob, rank: int) -> int:
    """(4)-(5) Join, run, leave a record; returns the exit code."""
    torch.set_num_threads(job.threads)
    failed_at: float | None = None
    try:
        if job.setup is not None:
            job.setup(rank)
        device, backend = device_for(job.device, rank), backend_for(job.device)
        timeout = timedelta(seconds=job.timeout_s)
        store = _join_store(job, rank, timeout)
        dist.init_process_group(  # (4)
            backend, store=store, rank=rank, world_size=job.world_size, timeout=timeout
        )
        ctx = WorkerContext(rank, job.world_size, rank, device, backend, "sparsgd", store)
        try:
            result = job.fn(ctx, *job.args)  # (5)
        except _Stopped as stopped:
            _exit_stopped(stopped)
        except BaseException:
            failed_at = time.time()
            raise
        finally:
            dist.destroy_process_group()
        write_record(record_path(job.records, rank), {"result": result})
        return 0
    except _Stopped as stopped:
        _exit_stopped(stopped)
    except BaseException:
        stamp = time.time() if failed_at is None else failed_at
        error = {"error": traceback.format_exc(), "failed_at": stamp}
        write_record(record_path(job.records, rank), error)
        return 1


def main(argv: Sequence[str]) -> int:
    if len(argv) != 3:
        raise SystemExit("usage: python -m sparsgd.comm.launch_child JOB_FILE RANK LAUNCHER_PID")
    job_file, rank, launcher_pid = argv[0], int(argv[1]), int(argv[2])
    faulthandler.enable()  # (0)
    _die_with(launcher_pid)
    for signum in (signal.SIGTERM, signal.SIGINT):  # (3)
        signal.signal(signum, _stop)
    try:
        job = _read_job(job_file)
    except _Stopped as stopped:
        return 128 + stopped.signum
    code = run_rank(job, rank)
    if code == 0:
        _exit_recorded()  # (6)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
