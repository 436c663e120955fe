"""One writer per run folder: an exclusive lock on ``DIR/.lock`` held for the whole run.

Two commands writing one folder (two ``--resume`` of the same run, or an ``--overwrite`` of a
running one) would interleave their log records and checkpoints. The process that starts a run
(the spawning parent, or torchrun's rank 0, or the simulator) holds the lock until the run has
ended; the worker processes it starts write under its lock.

    with RunLock("runs/a"):            # RunDirError if another live process holds it
        ...                            # create / resume the run, launch, summarise

(1) open ``DIR/.lock`` (creating DIR when needed) and ask the kernel for an exclusive,
    non-blocking ``flock``; the kernel releases it when the holder's file closes or the
    holder dies, so a lock left by a killed process is never stale for the kernel;
(2) refused: read the holder's PID from the file and name it in the error;
(3) granted: when the file names another PID that no longer runs, log that its lock is taken
    over; write our PID into the file;
(4) release: unlock and close; a folder that this lock created and that holds nothing else
    is removed again (a run refused by a later check leaves no folder behind).

The lock file stays in the folder between runs (removing it would race with a new holder);
:class:`sparsgd.runs.RunDir` ignores it when it checks that a new run's folder is empty.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from sparsgd.runs.run_dir import LOCK_FILE, RunDirError

__all__ = ["RunLock"]

logger = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    """Does process ``pid`` exist (on this machine)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _holder(file: IO[str]) -> int | None:
    """The PID written in the lock file, or ``None`` when it holds none."""
    file.seek(0)
    text = file.read().strip()
    return int(text) if text.isdigit() else None


class RunLock:
    """The exclusive lock of one run folder; a context manager (see the module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._file: IO[str] | None = None
        self._created = False

    def acquire(self) -> RunLock:
        """Steps (1)-(3); raises :class:`RunDirError` naming the holder's PID if it is taken."""
        if self._file is not None:
            raise RuntimeError(f"the lock of {self.folder} is already held by this object")
        if self.folder.exists() and not self.folder.is_dir():
            raise RunDirError(f"run folder {self.folder} exists and is not a directory")
        self._created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115  (1) kept open: the lock
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(file)  # (2)
            file.close()
            raise RunDirError(
                f"run folder {self.folder} is in use by process {holder} (lock {self.path}); "
                "wait for that run to end or stop it first"
            ) from None
        previous = _holder(file)  # (3)
        if previous is not None and previous != os.getpid() and not _alive(previous):
            logger.warning(
                "took over the lock of %s left by process %d, which no longer runs",
                self.folder,
                previous,
            )
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file
        return self

    def release(self) -> None:
        """Step (4); does nothing when the lock is not held."""
        if self._file is None:
            return
        if self._created and [p.name for p in self.folder.iterdir()] == [LOCK_FILE]:
            self.path.unlink()
            self.folder.rmdir()
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
