"""Run a function on P local processes joined by a gloo process group on 127.0.0.1.

    results = run_local_group(fn, world=4, args=(...,), timeout_s=120)
    # fn(rank, world, *args) ran in 4 fresh processes; results[r] is what rank r returned

(1) find a free TCP port (bind port 0), (2) start P processes with the ``spawn`` method,
(3) each one joins ``init_process_group("gloo", tcp://127.0.0.1:port)`` with the same
timeout, so a collective that hangs raises instead of blocking, runs ``fn`` and saves its
result (or its traceback) to a private temporary folder, (4) the parent waits until all are
done, kills every process left once the deadline passes or a few seconds after one failed,
and raises with the failing rank's traceback. ``fn`` must be importable (module level) and
return tensors, numbers, strings, lists and dicts. Used by the tests and ``sparsgd bench comm``.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["free_port", "run_local_group"]

log = logging.getLogger(__name__)

FAILURE_GRACE_S = 5.0  # after one rank failed, how long the others get to report their error
POLL_S = 0.05


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_local_group(
    fn: Callable[..., Any],
    world: int,
    args: tuple[Any, ...] = (),
    timeout_s: float = 120.0,
    threads: int = 1,
) -> list[Any]:
    """``[fn(0, world, *args), ..., fn(world - 1, world, *args)]``, each in its own process."""
    if world < 1:
        raise ValueError(f"world must be >= 1; got {world}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0; got {timeout_s}")
    port = free_port()  # (1)
    with tempfile.TemporaryDirectory(prefix="sparsgd-group-") as tmp:
        ctx = mp.get_context("spawn")
        procs = [
            ctx.Process(
                target=_child,
                args=(rank, world, port, fn, args, str(Path(tmp) / f"{rank}.pt"), timeout_s),
                kwargs={"threads": threads},
            )
            for rank in range(world)
        ]
        for proc in procs:  # (2)
            proc.start()
        first_failed = _wait(procs, timeout_s)  # (4)
        return _collect([Path(tmp) / f"{rank}.pt" for rank in range(world)], first_failed)


def _child(
    rank: int,
    world: int,
    port: int,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    out: str,
    timeout_s: float,
    threads: int,
) -> None:
    torch.set_num_threads(threads)
    failed_at: float | None = None  # wall-clock time fn raised, taken before the group closes
    try:  # (3)
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world,
            timeout=timedelta(seconds=timeout_s),
        )
        try:
            result = fn(rank, world, *args)
        except BaseException:
            failed_at = time.time()
            raise
        finally:
            dist.destroy_process_group()
        torch.save({"result": result}, out)
    except BaseException:
        # the wall-clock time of the failure orders the ranks: a rank that raises because a
        # peer died (gloo "connection closed") fails after that peer, whatever the polling saw
        stamp = time.time() if failed_at is None else failed_at
        torch.save({"error": traceback.format_exc(), "failed_at": stamp}, out)
        raise SystemExit(1) from None


def _wait(procs: list[Any], timeout_s: float) -> int | None:
    """Wait for every process; the rank that failed first (None if none did)."""
    deadline, first_failed = time.monotonic() + timeout_s, None
    while any(p.is_alive() for p in procs):
        if first_failed is None:
            failed = [rank for rank, p in enumerate(procs) if p.exitcode not in (None, 0)]
            if failed:
                first_failed = failed[0]
                deadline = min(deadline, time.monotonic() + FAILURE_GRACE_S)
        if time.monotonic() > deadline:
            alive = [rank for rank, p in enumerate(procs) if p.is_alive()]
            for rank in alive:
                procs[rank].kill()
            for p in procs:
                p.join()
            if first_failed is None:
                raise TimeoutError(
                    f"local group of {len(procs)} processes ran past {timeout_s} s; "
                    f"killed ranks {alive}"
                )
            log.warning("killed ranks %s after rank %d failed", alive, first_failed)
            return first_failed
        time.sleep(POLL_S)
    for p in procs:
        p.join()
    failed = [rank for rank, p in enumerate(procs) if p.exitcode != 0]
    return first_failed if first_failed is not None else (failed[0] if failed else None)


def _collect(paths: list[Path], first_failed: int | None) -> list[Any]:
    """Every rank's result; else the traceback of the rank that failed first."""
    records = [torch.load(p, weights_only=False) if p.exists() else None for p in paths]
    errors = {r: rec["error"] for r, rec in enumerate(records) if rec and "error" in rec}
    if errors:
        failed_at = {r: records[r]["failed_at"] for r in errors}
        rank = min(errors, key=lambda r: (failed_at[r], r != first_failed, r))
        others = sorted(set(errors) - {rank})
        raise RuntimeError(
            f"rank {rank} of {len(paths)} failed (then ranks {others}):\n{errors[rank]}"
        )
    missing = [rank for rank, record in enumerate(records) if record is None]
    if missing:
        raise RuntimeError(f"ranks {missing} exited without a result (killed or crashed)")
    return [record["result"] for record in records]
