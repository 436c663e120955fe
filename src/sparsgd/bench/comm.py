"""Time the four collectives on P local processes (gloo on 127.0.0.1) in one run.

Every rank holds a Gaussian p of ``numel`` entries (seed derived per rank) and calls each
collective of sparsgd.comm once untimed, then ``repeats`` times after a barrier:

    dense           all_reduce of p                         the baseline
    topk_allgather  union of the P local top-k sets         O(kP) bytes per rank
    gtopk           tree reduce + broadcast of k entries    O(k log P) bytes per rank
    gtopk_exact     gtopk's index set + all_reduce of k values

A call's time is that of the slowest rank (a collective ends when its last rank does); the
table gives its median over the repeats, split into select (local top-k and tree merges),
comm and apply, the bytes the busiest rank sent (as counted by the collective, the status
that rides in its messages included), rank 0's messages sent and received, both ratios to
dense measured in this same run, and for dense ``plain_ms``: a plain ``dist.all_reduce`` of
the same tensor, timed in the same run. ``floor_ms`` is one read pass over p (``p.sum()``,
median over every rank and repeat, timed right after each call) and ``local_x_floor`` the
local work, select + apply, as a multiple of it.

The dense row is timed the way the sync step calls dense: p is written into the collective's
staging view (:meth:`~sparsgd.comm.dense.DenseAllreduce.staging`, the first d entries of its
all-reduce buffer, where the step flattens the gradients) before each call, outside the timed
span, and reduced there with no copy; ``plain_ms`` beside it is ``dist.all_reduce`` of a
separate tensor of the same d entries. (A p outside the staging view, as with the sync step's
memory ``residual``, adds one copy of d entries to dense's apply phase.)

``overwrite=True`` times the sparse collectives' ``reduce(q, density, overwrite=True)`` (the
sync step's call: the collective may write the residual into q) on a copy q of p refilled
before each call, outside the timed span, so every call sees the same input.
"""

from __future__ import annotations

import math
import statistics
import time

import torch
import torch.distributed as dist

from sparsgd.comm import COLLECTIVES, make_collective
from sparsgd.comm.launch import LaunchOptions, WorkerContext, launch
from sparsgd.compress.checks import k_from_density

__all__ = ["TIMES", "bench_worker", "measure_collectives", "summarise"]

# a worker's row per call: these four times in seconds, then bytes sent; reported in ms
TIMES = ("median_ms", "select_ms", "comm_ms", "apply_ms")


def bench_worker(
    ctx: WorkerContext,
    numel: int,
    density: float,
    repeats: int,
    seed: int,
    overwrite: bool = False,
) -> dict[str, list[list[float]]]:
    """collective -> one row per repeat: wall, select, comm, apply seconds, bytes sent,
    messages sent and received, the seconds of a bare collective of the same bytes, and of
    one read pass over p."""
    k = k_from_density(density, numel)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + ctx.rank)
    p = torch.randn(numel, generator=generator)  # (numel,) float32
    plain = p.clone()  # (numel,) reused by the plain all_reduce timed beside dense
    copy = p.clone() if overwrite else p  # (numel,) the sparse collectives' input
    out = {}
    for name in COLLECTIVES:
        collective = make_collective(name)
        collective.reduce(p, density)  # untimed warm-up
        staging = getattr(collective, "staging", None)  # dense: where the sync step writes g
        q = staging(numel, p.dtype, p.device) if callable(staging) else copy
        rows = []
        for _ in range(repeats):
            if q is not p:
                q.copy_(p)  # the same input every call, refilled outside the timed span
            dist.barrier()
            start = time.perf_counter()
            reduced = collective.reduce(q, density, overwrite=overwrite)
            wall = time.perf_counter() - start
            s = reduced.stats
            row = [wall, s.select_s, s.comm_s, s.apply_s, s.bytes_sent]
            row += [s.messages_sent, s.messages_recv, _plain_s(plain, name, k)]
            rows.append([*row, _read_pass_s(p)])
        out[name] = rows
    return out


def _read_pass_s(p: torch.Tensor) -> float:
    """Seconds of one read pass over ``p`` on this rank (``p.sum()``): the memory floor the
    local work (select + apply) is compared with, measured in the same rounds."""
    start = time.perf_counter()
    float(p.sum())
    return time.perf_counter() - start


def _plain_s(buffer: torch.Tensor, name: str, k: int) -> float:
    """Seconds of a bare gloo collective of the same bytes: all_reduce of ``buffer`` beside
    dense, all_gather of k entries of 8 B (int32 index + float32 value) beside topk_allgather;
    NaN for the tree collectives, which have no single bare counterpart."""
    if name not in ("dense", "topk_allgather"):
        return math.nan
    entries = torch.zeros(2 * k)  # (2k,) float32 = k entries of 8 B
    gathered = [torch.empty_like(entries) for _ in range(dist.get_world_size())]
    dist.barrier()
    start = time.perf_counter()
    if name == "dense":
        dist.all_reduce(buffer)
    else:
        dist.all_gather(gathered, entries)
    return time.perf_counter() - start


def summarise(per_rank: list[dict[str, list[list[float]]]]) -> list[dict[str, float | str]]:
    """One row per collective: medians over repeats of the slowest rank, busiest rank's bytes."""
    rows = []
    for name in COLLECTIVES:
        calls = list(zip(*(ranks[name] for ranks in per_rank), strict=True))  # repeat -> ranks
        row: dict[str, float | str] = {"collective": name}
        for i, field in enumerate(TIMES):
            slowest = [max(rank_row[i] for rank_row in call) for call in calls]
            row[field] = statistics.median(slowest) * 1e3
        row["bytes_sent_per_rank"] = int(max(r[4] for call in calls for r in call))
        row["bytes_sent_mean"] = statistics.fmean(r[4] for r in calls[0])
        row["messages_sent"], row["messages_recv"] = int(calls[-1][0][5]), int(calls[-1][0][6])
        if name in ("dense", "topk_allgather"):  # a bare collective of the same bytes
            row["plain_ms"] = statistics.median(max(r[7] for r in call) for call in calls) * 1e3
        row["floor_ms"] = statistics.median(r[8] for call in calls for r in call) * 1e3
        local_ms = float(row["select_ms"]) + float(row["apply_ms"])
        row["local_x_floor"] = local_ms / float(row["floor_ms"])
        rows.append(row)
    dense = rows[0]
    for row in rows:
        row["ratio_to_dense"] = float(row["median_ms"]) / float(dense["median_ms"])
        row["bytes_ratio_to_dense"] = int(row["bytes_sent_per_rank"]) / max(
            1, int(dense["bytes_sent_per_rank"])
        )
    return rows


def measure_collectives(
    workers: int,
    numel: int,
    density: float,
    repeats: int,
    seed: int,
    *,
    timeout_s: float = 600.0,
    threads: int = 1,
    overwrite: bool = False,
) -> list[dict[str, float | str]]:
    """Start ``workers`` local processes, run :func:`bench_worker` on each, summarise."""
    per_rank = launch(
        bench_worker,
        workers,
        (numel, density, repeats, seed, overwrite),
        LaunchOptions(timeout_s=timeout_s, threads=threads),
        deadline_s=timeout_s,
    )
    return summarise(per_rank)
