"""Rules and shared runs for the whole suite.

Slow: every test marked ``multiprocess`` (it starts processes that each import torch, 2-4 s
apiece on a 2-core machine) is also marked ``slow`` here, and a test that takes a second or
more in one process carries ``@pytest.mark.slow`` itself (README, Tests). ``pytest -m "not
slow"`` is the fast loop.

Threads: under pytest-xdist each worker gets its share of the cores for torch's intra-op
threads (one each for two workers on two cores). With torch's default, one thread per core in
every worker, the workers' threads wait for each other: the fast loop took 106 s on two
workers, against 41 s in one process.

Shared: the suite's one end-to-end ``sparsgd train`` run (``sync_cli_run``), made once even
when pytest-xdist workers ask for it, and a lock holder in another process (``lock_holder``).

Selection: ``selection_path`` runs a test with the compiled selection loops and again with the
numpy/torch path (``fallback`` with the latter only).
"""

from __future__ import annotations

import fcntl
import importlib.util
import multiprocessing
import multiprocessing.process
import multiprocessing.synchronize
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from sparsgd.compress import kernels

CLI_RUN_TIMEOUT_S = 240  # a hang fails the tests that use the run instead of blocking the suite
LOCK_HOLD_S = 60  # a lock holder sleeps this long at most; the tests kill it long before
LOCK_READY_S = 30  # a forked holder takes the lock in milliseconds; this bounds a hang
# the small two-worker S-SGD run of sync_cli_run: its options, shared by the tests that use it
# (TensorBoard events too where the package is installed: tests/runs/test_tensorboard.py)
SYNC_CLI_RUN = [
    "--workers",
    "2",
    "--hidden-size",
    "16",
    "--steps",
    "6",
    "--log-every",
    "2",
    "--checkpoint-every",
    "2",
    "--no-progress",
    *(["--tensorboard"] if importlib.util.find_spec("tensorboard") else []),
]


def pytest_configure(config: pytest.Config) -> None:
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")  # set in pytest-xdist's workers
    if workers is not None:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marks added here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("multiprocess") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


def child_env() -> dict[str, str]:
    """This process's environment without a torchrun rank (the command starts its own)."""
    return {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}


def _train_cli(out: Path) -> str:
    """``python -m sparsgd.cli.main train --out OUT SYNC_CLI_RUN`` in a fresh process: stdout."""
    command = [sys.executable, "-m", "sparsgd.cli.main", "train", "--out", str(out)]
    done = subprocess.run(
        [*command, *SYNC_CLI_RUN],
        capture_output=True,
        text=True,
        timeout=CLI_RUN_TIMEOUT_S,
        env=child_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for the test, then back: on 2 shared cores small in-process runs
    are faster and steadier with one (``pytestmark = pytest.mark.usefixtures(...)``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def sync_cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One finished ``sparsgd train`` run of 2 workers, started as a user starts it: a fresh
    ``python -m sparsgd.cli.main`` process with ``SYNC_CLI_RUN`` (6 steps, a checkpoint every
    2, TensorBoard events). Returns (run folder, the command's stdout); tests read it and
    change only copies of it (``sync_cli_copy``).

    Under pytest-xdist the workers share the parent of their temporary folders, which is new
    for each pytest run: the first worker to ask makes the run there, holding a file lock, and
    the others wait for it and read it (pytest-xdist's documented way to share a session
    fixture). Without xdist the run goes in this session's temporary folder.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        out = tmp_path_factory.mktemp("sync_cli_run") / "run"
        return out, _train_cli(out)
    shared = tmp_path_factory.getbasetemp().parent / "sync_cli_run"
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        stdout_file = shared / "stdout.txt"
        if not stdout_file.exists():  # written last: the run before it is complete
            stdout_file.write_text(_train_cli(shared / "run"))
    return shared / "run", stdout_file.read_text()


@pytest.fixture
def sync_cli_copy(sync_cli_run: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A copy of ``sync_cli_run``'s folder in this test's tmp_path, and the run's stdout."""
    run, stdout = sync_cli_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy, stdout


def _hold_lock(folder: str, ready: multiprocessing.synchronize.Event) -> None:
    """A lock holder's body: take the folder's RunLock, say so, then sleep until killed."""
    from sparsgd.runs import RunLock

    lock = RunLock(folder).acquire()
    ready.set()
    time.sleep(LOCK_HOLD_S)
    lock.release()  # not reached: the test kills this process first


@pytest.fixture
def lock_holder() -> Iterator[Callable[[Path], multiprocessing.process.BaseProcess]]:
    """Start another process that takes a run folder's lock and holds it: ``lock_holder(DIR)``
    returns once the lock is held. The process is forked from this one (it only locks and
    sleeps), so it starts in milliseconds; every holder still alive is killed afterwards."""
    context = multiprocessing.get_context("fork")
    holders = []

    def start(folder: Path) -> multiprocessing.process.BaseProcess:
        ready = context.Event()
        holder = context.Process(target=_hold_lock, args=(str(folder), ready), daemon=True)
        holder.start()
        holders.append(holder)
        assert ready.wait(LOCK_READY_S), f"the lock holder of {folder} never took the lock"
        return holder

    yield start
    for holder in holders:
        holder.kill()
        holder.join()


@pytest.fixture(params=["compiled", "fallback"])
def selection_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each implementation of the exact selection: the compiled loops of
    sparsgd.compress.kernels (skipped where the install built none) and the numpy/torch path
    that runs without them. Both must give the same indices."""
    if request.param == "compiled" and kernels._select is None:
        pytest.skip("the compiled selection was not built (no C compiler at install time)")
    previous = kernels.set_enabled(request.param == "compiled")
    try:
        yield request.param
    finally:
        kernels.set_enabled(previous)


@pytest.fixture
def fallback() -> Iterator[None]:
    """The numpy/torch path only (the compiled loops switched off), for tests of its pieces."""
    previous = kernels.set_enabled(False)
    try:
        yield
    finally:
        kernels.set_enabled(previous)
