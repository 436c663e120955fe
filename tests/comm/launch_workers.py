"""Worker functions of the launcher tests (module level, so that every rank finds them)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist

from sparsgd.comm.launch import WorkerContext

GO_WAIT_S = 60.0  # a rank waits at most this long for the test's go-ahead


def allreduce_ranks(ctx: WorkerContext, out: str) -> dict:
    """Every rank sums the ranks, writes what it saw to OUT/rank-<r>.json and returns it."""
    x = torch.tensor([float(ctx.rank)])
    dist.all_reduce(x)
    record = {"rank": ctx.rank, "world": ctx.world_size, "sum": x.item(), "by": ctx.launched_by}
    (Path(out) / f"rank-{ctx.rank}.json").write_text(json.dumps(record))
    return record


def crash_on_rank_1(ctx: WorkerContext, out: str) -> None:
    """Rank 1 raises; the others block in a collective that can never complete."""
    if ctx.rank == 1:
        raise ZeroDivisionError("injected failure on rank 1")
    dist.barrier()
    (Path(out) / f"rank-{ctx.rank}-passed-barrier").write_text("should not happen")


def hold_until_go(ctx: WorkerContext, folder: str) -> int:
    """After one collective (every gloo link is up), say so and wait for FOLDER/go."""
    dist.barrier()
    (Path(folder) / f"ready-{ctx.rank}").write_text(str(os.getpid()))
    deadline = time.monotonic() + GO_WAIT_S
    while not (Path(folder) / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no go-ahead in {folder} within {GO_WAIT_S} s")
        time.sleep(0.02)
    return ctx.rank


def report_env(ctx: WorkerContext, names: tuple[str, ...]) -> dict:
    """The values this rank sees for NAMES, after one collective."""
    dist.barrier()
    return {name: os.environ.get(name) for name in names}


def allreduce_then_hold(ctx: WorkerContext, folder: str) -> dict:
    """``allreduce_ranks``, then ``hold_until_go``: one launch for two launcher tests."""
    record = allreduce_ranks(ctx, folder)
    hold_until_go(ctx, folder)
    return record


KEPT_OPEN: list = []  # files a worker leaves open on purpose, held to the end of the process


def leave_files_open(ctx: WorkerContext, out: str) -> int:
    """Writes less than a buffer into a file it keeps referenced and one it drops, closing
    neither: a rank ends without the interpreter's teardown, and both must still reach disk."""
    held = open(Path(out) / f"held-{ctx.rank}.txt", "w", encoding="utf-8")  # noqa: SIM115
    held.write(f"held by rank {ctx.rank}\n")
    KEPT_OPEN.append(held)
    dropped = open(Path(out) / f"dropped-{ctx.rank}.txt", "w", encoding="utf-8")  # noqa: SIM115
    dropped.write(f"dropped by rank {ctx.rank}\n")
    del dropped
    return ctx.rank
