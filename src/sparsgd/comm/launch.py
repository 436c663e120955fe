"""The one launcher: run ``fn(ctx, *args)`` on P processes joined by one process group.

    results = launch(fn, 4, (data,), LaunchOptions(timeout_s=60), deadline_s=120)
    # results[r] is what rank r returned; a failure raises WorkerFailed naming the first rank

    group = Group(fn, 4, (data,), LaunchOptions(required=(0,)))   # keep a handle: pids, wait
    group.start(); group.pids; results = group.wait(deadline_s)

Used by synchronous training, the parameter server, ``sparsgd bench comm`` and the tests;
under ``torchrun`` see :func:`sparsgd.comm.worker_env.run_under_torchrun` instead.

(1) Rendezvous: the launcher binds a socket to ``options.address`` (127.0.0.1 unless named) on
    port 0, so the system picks a free port nobody can take before the ranks connect, and
    hands it to a ``TCPStore``: the store listens on that address only, never on every
    interface. Each rank's gloo listens on its host's interface (``lo`` for local launches).
    (1') With ``LaunchOptions.store_port``, rank 0 opens the store instead, on its own address
    and that port, for ranks in a network the launcher cannot reach (the lab's namespaces).
(2) The ranks are plain subprocesses, ``[*host.prefix, python, -m, sparsgd.comm.launch_child,
    ...]``, one :class:`Host` per rank (command prefix, network interface, environment), so a
    rank can live in another network namespace; the job (``fn``, ``args``, settings) goes
    through one pickled file. See :mod:`sparsgd.comm.launch_child` for a rank's own steps.
(3) The launcher polls the ranks. When a ``required`` rank fails it gives the others
    ``FAILURE_GRACE_S`` to report their own errors, stops the rest and raises
    :class:`WorkerFailed` with the traceback of the rank that failed first by wall-clock time.
    When every required rank has finished, the others get ``linger_s``, then are stopped.
    Past ``deadline_s`` everything is stopped and ``TimeoutError`` raised.
(4) SIGTERM or SIGINT to the launcher is forwarded to every rank; after a bounded grace the
    rest is killed and :class:`Interrupted` raised (exit code 143 or 130). Whatever happens,
    no rank outlives :meth:`Group.wait` or :meth:`Group.close`.
"""

from __future__ import annotations

import logging
import multiprocessing.spawn
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch.distributed as dist

from sparsgd.comm.launch_options import ChildJob, Host, LaunchOptions, record_path
from sparsgd.comm.processes import (
    Child,
    Interrupted,
    SignalWatch,
    WorkerFailed,
    failure,
    read_record,
    start_child,
    stop_children,
)
from sparsgd.comm.worker_env import WorkerContext

__all__ = [
    "FAILURE_GRACE_S",
    "Group",
    "Host",
    "Interrupted",
    "LaunchOptions",
    "WorkerContext",
    "WorkerFailed",
    "launch",
]

logger = logging.getLogger(__name__)

FAILURE_GRACE_S = 3.0  # after a required rank failed: time for the others to report theirs
POLL_S = 0.05


class Group:
    """The P ranks of one launch: :meth:`start`, then :meth:`wait` (or :meth:`close`)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        world: int,
        args: tuple[Any, ...] = (),
        options: LaunchOptions | None = None,
    ) -> None:
        if isinstance(world, bool) or not isinstance(world, int) or world < 1:
            raise ValueError(f"world must be an integer >= 1; got {world!r}")
        self.options = LaunchOptions() if options is None else options
        self.options.check(world)
        self.fn, self.world, self.args = fn, world, args
        self.children: list[Child] = []
        self._store: dist.TCPStore | None = None
        self._port: int | None = None
        self._folder: str | None = None

    @property
    def pids(self) -> list[int]:
        """Process ids of ranks 0..P-1 (started ones)."""
        return [c.pid for c in self.children]

    @property
    def port(self) -> int:
        """The rendezvous store's port (chosen by the system in :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("start() the group first")
        return self._port

    def start(self) -> None:
        """(1) open the store, (2) write the job and start every rank."""
        if self._port is not None:
            raise RuntimeError("this group was started already; make a new Group")
        o = self.options
        if o.store_port is None:
            port = self._port = self._open_store()  # (1)
        else:  # (1') rank 0 opens it, in its own network
            port = self._port = o.store_port
        self._folder = tempfile.mkdtemp(prefix="sparsgd-launch-")
        threads = o.threads or max(1, (os.cpu_count() or 1) // self.world)
        job = ChildJob(
            self.fn, self.args, self.world, o.address, port, o.device, o.timeout_s, threads,
            o.setup, self._folder, o.store_port is not None,
        )  # fmt: skip
        job_file = Path(self._folder) / "job.pkl"
        with open(job_file, "wb") as f:  # (2)
            pickle.dump(_import_setup(), f)
            pickle.dump(job, f)
        try:
            for rank in range(self.world):
                host = o.host(rank)
                command = [*host.prefix, sys.executable, "-m", "sparsgd.comm.launch_child"]
                launcher = 0 if host.prefix else os.getpid()
                command += [str(job_file), str(rank), str(launcher)]
                self.children.append(start_child(rank, command, _child_env(host)))
        except BaseException:
            self.close()
            raise

    def _open_store(self) -> int:
        o = self.options
        listener = socket.create_server((o.address, 0), backlog=max(128, self.world))
        port = int(listener.getsockname()[1])
        self._store = dist.TCPStore(
            o.address,
            port,
            self.world,
            True,
            timeout=timedelta(seconds=o.timeout_s),
            wait_for_workers=False,
            master_listen_fd=listener.detach(),  # the store owns and closes it
        )
        return port

    def wait(self, deadline_s: float | None = None) -> list[Any]:
        """(3)-(4) Wait for the ranks; every rank's result (``None`` for a non-required rank that
        left none). Raises WorkerFailed, TimeoutError or Interrupted; the group is closed after.
        """
        if not self.children:
            raise RuntimeError("start() the group first")
        if deadline_s is not None and deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0; got {deadline_s}")
        try:
            with SignalWatch() as watch:
                first_failed, stopped = self._watch(watch, deadline_s)
            return self._collect(first_failed, stopped)
        finally:
            self.close()

    def close(self) -> None:
        """Stop every rank still running, close the store, delete the records."""
        if any(c.is_alive() for c in self.children):
            stop_children(self.children, signal.SIGTERM)
        self._store = None  # its server stops listening
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _watch(self, watch: SignalWatch, deadline_s: float | None) -> tuple[int | None, set[int]]:
        """Poll until every rank ended or was stopped: (first failed required rank, stopped)."""
        now = time.monotonic()
        deadline = float("inf") if deadline_s is None else now + deadline_s
        first_failed: int | None = None
        linger_until = float("inf")
        required = [self.children[r] for r in self.options.required_ranks(self.world)]
        while any(c.is_alive() for c in self.children):
            if watch.received is not None:  # (4)
                stop_children(self.children, watch.received)
                raise Interrupted(watch.received)
            now = time.monotonic()
            if first_failed is None:
                failed = [c.rank for c in required if c.exitcode not in (None, 0)]
                if failed:
                    first_failed = failed[0]
                    deadline = min(deadline, now + FAILURE_GRACE_S)
                elif linger_until == float("inf") and not any(c.is_alive() for c in required):
                    linger_until = now + self.options.linger_s
            if now > deadline or now > linger_until:
                return first_failed, self._stop_late(first_failed, now > linger_until, deadline_s)
            time.sleep(POLL_S)
        return first_failed, set()

    def _stop_late(
        self, first_failed: int | None, lingered: bool, deadline_s: float | None
    ) -> set[int]:
        stopped = stop_children(self.children, signal.SIGTERM)
        ranks = sorted(stopped)
        if first_failed is not None:
            logger.warning("stopped ranks %s after rank %d failed", ranks, first_failed)
        elif lingered:
            logger.warning("ranks %s still running after the required ranks ended; stopped", ranks)
        else:
            raise TimeoutError(
                f"launch of {self.world} processes ran past {deadline_s} s; killed ranks {ranks}"
            )
        return stopped

    def _collect(self, first_failed: int | None, stopped: set[int]) -> list[Any]:
        """Every rank's result; or WorkerFailed for the required rank that failed first."""
        assert self._folder is not None
        records = [read_record(record_path(self._folder, r)) for r in range(self.world)]
        required = set(self.options.required_ranks(self.world))
        codes = [c.exitcode for c in self.children]
        failed = [
            r
            for r in sorted(required)
            if (records[r] is not None and "error" in records[r])
            or (r not in stopped and (records[r] is None or codes[r] != 0))
        ]
        if failed:
            raise failure(failed, first_failed, records, codes)
        for r in sorted(set(range(self.world)) - required):
            if codes[r] != 0:
                logger.warning("rank %d ended with exit code %s", r, codes[r])
        return [None if rec is None else rec.get("result") for rec in records]


def launch(
    fn: Callable[..., Any],
    world: int,
    args: tuple[Any, ...] = (),
    options: LaunchOptions | None = None,
    *,
    deadline_s: float | None = None,
) -> list[Any]:
    """``[fn(ctx_0, *args), ..., fn(ctx_{P-1}, *args)]``, each rank in its own process.

    ``fn``, ``args`` and ``options.setup`` must be picklable (module-level functions, data);
    results are tensors, numbers, strings, lists, dicts. ``setup(rank)`` runs first in every
    rank (logging configuration, for instance).
    """
    group = Group(fn, world, args, options)
    group.start()
    return group.wait(deadline_s)


def _import_setup() -> dict[str, Any]:
    """What a rank needs to import ``fn`` as this process would: path, folder, main module."""
    setup = multiprocessing.spawn.get_preparation_data("sparsgd-rank")
    setup.pop("authkey", None)  # no multiprocessing connection is ever made
    return setup


def _child_env(host: Host) -> dict[str, str]:
    """This process's environment, sparsgd importable, the host's network and variables."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # .../src: sparsgd/comm/launch.py
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    if host.interface is not None:
        env["GLOO_SOCKET_IFNAME"] = host.interface
    env.update(dict(host.env))
    return env
