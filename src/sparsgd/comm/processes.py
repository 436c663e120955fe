"""The child processes of one launch: start them, watch for signals, stop them, read their records.

    children = [start_child(command, env) for ...]   # (1) own session each; exitcode like mp
    with SignalWatch() as signals:                   # (2) SIGTERM / SIGINT only noted here
        ... poll children; signals.received ...
    stop_children(children, signal.SIGTERM)          # (3) signal, bounded grace, then SIGKILL

(1) Every child starts in a session of its own, so a Ctrl-C in the terminal reaches the
launcher alone and the launcher decides what the children get; the child also asks the kernel
to kill it when the launcher dies (``PR_SET_PDEATHSIG``, see :mod:`sparsgd.comm.launch_child`),
so no child outlives a launcher that was killed outright. (2) While the launcher waits, SIGTERM
and SIGINT are noted instead of raising inside whatever it was doing; the waiting loop forwards
the signal to every child. (3) Stopping sends a signal to each child's whole process group
(a command prefix such as ``ip netns exec`` or a data loader's workers included), waits at most
``grace_s``, then kills what is left and reaps it.

A child leaves one record file, written whole (temporary name, then rename): ``{"result": r}``
or ``{"error": traceback, "failed_at": wall-clock time}``; :func:`read_record` reads it back,
and :func:`failure` turns the records of failed ranks into one :class:`WorkerFailed`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import torch

__all__ = [
    "STOP_GRACE_S",
    "Child",
    "Interrupted",
    "SignalWatch",
    "WorkerFailed",
    "failure",
    "read_record",
    "start_child",
    "stop_children",
    "write_record",
]

logger = logging.getLogger(__name__)

STOP_GRACE_S = 5.0  # a stopped child gets this long to leave its collectives and exit
REAP_S = 5.0  # after SIGKILL: the kernel frees a process in far less
POLL_S = 0.02
FORWARDED = (signal.SIGTERM, signal.SIGINT)


class Child:
    """One started rank: its process and, once it ended, its exit code (``-N``: signal N)."""

    def __init__(self, rank: int, process: subprocess.Popen[bytes]) -> None:
        self.rank = rank
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def exitcode(self) -> int | None:
        """``None`` while running; like ``multiprocessing.Process.exitcode`` once ended."""
        return self.process.poll()

    def is_alive(self) -> bool:
        return self.exitcode is None

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the child's process group (it leads one: own session)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


def start_child(rank: int, command: Sequence[str], env: Mapping[str, str]) -> Child:
    """(1) Start ``command`` in a new session with exactly ``env`` as its environment."""
    process = subprocess.Popen(list(command), env=dict(env), start_new_session=True)
    return Child(rank, process)


def stop_children(
    children: Sequence[Child], signum: int, grace_s: float = STOP_GRACE_S
) -> set[int]:
    """(3) Signal the living children, wait up to ``grace_s``, then SIGKILL; returns their ranks.

    Every child has ended (and is reaped) when this returns.
    """
    alive = {c.rank for c in children if c.is_alive()}
    for child in children:
        if child.rank in alive:
            child.signal_group(signum)
    deadline = time.monotonic() + grace_s
    while any(c.is_alive() for c in children) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    for child in children:
        if child.is_alive():
            logger.warning(
                "rank %d ignored signal %d for %.1f s; killing it", child.rank, signum, grace_s
            )
        child.signal_group(signal.SIGKILL)  # also whatever the child started and left behind
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(REAP_S)
    return alive


class SignalWatch:
    """(2) Within ``with``: SIGTERM and SIGINT set :attr:`received` instead of their default.

    Outside the main thread signals cannot be caught; the watch then does nothing.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum

    def __enter__(self) -> SignalWatch:
        if threading.current_thread() is threading.main_thread():
            for signum in FORWARDED:
                self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a child's record whole: a reader never sees half of it."""
    part = path.with_name(path.name + ".part")
    torch.save(record, part)
    os.replace(part, path)


def read_record(path: Path) -> dict[str, Any] | None:
    """The record a child left, or ``None`` when it left none (killed, or crashed hard)."""
    if not path.exists():
        return None
    record: dict[str, Any] = torch.load(path, weights_only=False)
    return record


class WorkerFailed(RuntimeError):
    """A rank raised or died; the message carries its traceback."""

    def __init__(self, message: str, rank: int, exit_code: int | None) -> None:
        super().__init__(message)
        self.rank = rank
        self.exit_code = exit_code


class Interrupted(BaseException):
    """The launcher got SIGTERM or SIGINT and stopped every rank (like KeyboardInterrupt, this
    is no Exception: a handler of errors does not swallow it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum  # what a shell reports for a process the signal ended
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def _traceback(record: dict[str, Any] | None, code: int | None) -> str:
    if record is not None and "error" in record:
        return str(record["error"])
    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    return f"(no Python traceback: the process ended with {how})\n"


def failure(
    failed: Sequence[int],
    first_seen: int | None,
    records: Sequence[dict[str, Any] | None],
    codes: Sequence[int | None],
) -> WorkerFailed:
    """The error of the rank that failed first, one line for every other failed rank.

    First by the wall-clock time its record gives; a rank that died without a record (a
    signal) comes first only if the launcher saw it end before any other failure.
    """

    def order(rank: int) -> tuple[int, float, int]:
        record = records[rank]
        if record is not None and "error" in record:
            return (1, float(record["failed_at"]), rank)
        return (0 if rank == first_seen else 2, 0.0, rank)

    ranks = sorted(failed, key=order)
    rank, others = ranks[0], ranks[1:]
    message = f"rank {rank} of {len(records)} failed (then ranks {sorted(others)}):\n"
    message += _traceback(records[rank], codes[rank])
    for r in others:
        last = _traceback(records[r], codes[r]).strip().splitlines()[-1:]
        message += f"\n(rank {r} also failed, probably as a consequence: {' '.join(last)})"
    return WorkerFailed(message, rank, codes[rank])
