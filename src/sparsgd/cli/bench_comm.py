"""Time the four collectives on P local processes (gloo on 127.0.0.1) in one run.

Every rank holds a Gaussian p of --numel entries (seed derived per rank) and calls each
collective of sparsgd.comm once untimed, then --repeats times after a barrier:

    dense           all_reduce of p                         the baseline
    topk_allgather  union of the P local top-k sets         O(kP) bytes per rank
    gtopk           tree reduce + broadcast of k entries    O(k log P) bytes per rank
    gtopk_exact     gtopk's index set + all_reduce of k values

A call's time is that of the slowest rank (a collective ends when its last rank does); the
table gives its median over the repeats, split into select (local top-k and tree merges),
comm and apply, the bytes the busiest rank sent (as counted by the collective, the
input check included), and both ratios to dense measured in this same run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch
import torch.distributed as dist

from sparsgd.comm import COLLECTIVES, make_collective
from sparsgd.comm.launch import LaunchOptions, WorkerContext, launch
from sparsgd.compress.checks import k_from_density

__all__ = ["HELP", "add_arguments", "run"]

HELP = "time dense, topk_allgather, gtopk and gtopk_exact on P local processes (median ms, bytes)"
# a worker's row per call: these four times in seconds, then bytes sent; reported in ms
TIMES = ("median_ms", "select_ms", "comm_ms", "apply_ms")


def _at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or value != int(value) or value < minimum:
            raise argparse.ArgumentTypeError(
                f"{what} must be an integer >= {minimum}; got {text!r}"
            )
        return int(value)

    return parse


def _density(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"density must be in (0, 1]; got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=_at_least(1, "workers"), required=True, help="P")
    parser.add_argument("--numel", type=_at_least(1, "numel"), required=True, help="d, e.g. 1e7")
    parser.add_argument("--density", type=_density, required=True, help="rho in (0, 1]")
    parser.add_argument("--repeats", type=_at_least(1, "repeats"), default=5, help="default 5")
    parser.add_argument("--seed", type=_at_least(0, "seed"), default=0, help="default 0")
    parser.add_argument(
        "--threads", type=_at_least(1, "threads"), default=1, help="torch threads per process"
    )
    parser.add_argument(
        "--timeout", type=_at_least(1, "timeout"), default=600, help="seconds for the whole run"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")


def bench_worker(
    ctx: WorkerContext, numel: int, density: float, repeats: int, seed: int
) -> dict[str, list[list[float]]]:
    """collective -> one row per repeat: wall, select, comm, apply seconds, bytes sent,
    messages sent and received, and (dense) the seconds of a plain all_reduce of p."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + ctx.rank)
    p = torch.randn(numel, generator=generator)  # (numel,) float32
    out = {}
    plain = p.clone()  # (numel,) reused by the plain all_reduce timed beside dense
    for name in COLLECTIVES:
        collective = make_collective(name)
        collective.reduce(p, density)  # untimed warm-up
        rows = []
        for _ in range(repeats):
            dist.barrier()
            start = time.perf_counter()
            s = collective.reduce(p, density).stats
            wall = time.perf_counter() - start
            row = [wall, s.select_s, s.comm_s, s.apply_s, s.bytes_sent]
            rows.append([*row, s.messages_sent, s.messages_recv, _plain_s(plain, name)])
        out[name] = rows
    return out


def _plain_s(buffer: torch.Tensor, name: str) -> float:
    """Seconds of a plain dist.all_reduce of ``buffer`` (dense only; NaN for the others)."""
    if name != "dense":
        return math.nan
    dist.barrier()
    start = time.perf_counter()
    dist.all_reduce(buffer)
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
        if name == "dense":  # a plain all_reduce of the same tensor, timed in the same run
            row["plain_ms"] = statistics.median(max(r[7] for r in call) for call in calls) * 1e3
        rows.append(row)
    dense = rows[0]
    for row in rows:
        row["ratio_to_dense"] = float(row["median_ms"]) / float(dense["median_ms"])
        row["bytes_ratio_to_dense"] = int(row["bytes_sent_per_rank"]) / max(
            1, int(dense["bytes_sent_per_rank"])
        )
    return rows


def run(args: argparse.Namespace) -> int:
    k = k_from_density(args.density, args.numel)
    per_rank = launch(
        bench_worker,
        args.workers,
        (args.numel, args.density, args.repeats, args.seed),
        LaunchOptions(timeout_s=float(args.timeout), threads=args.threads),
        deadline_s=float(args.timeout),
    )
    rows = summarise(per_rank)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"P={args.workers} processes (gloo on 127.0.0.1, {args.threads} thread(s) each), "
        f"numel={args.numel}, density={args.density} (k={k}), repeats={args.repeats}"
    )
    print(
        f"{'collective':<15} {'median ms':>10} {'select ms':>10} {'comm ms':>9} {'apply ms':>9}"
        f" {'bytes/rank':>12} {'bytes/dense':>11} {'time/dense':>10}"
    )
    for r in rows:
        print(
            f"{r['collective']:<15} {r['median_ms']:>10.2f} {r['select_ms']:>10.2f}"
            f" {r['comm_ms']:>9.2f} {r['apply_ms']:>9.2f} {r['bytes_sent_per_rank']:>12d}"
            f" {r['bytes_ratio_to_dense']:>11.4f} {r['ratio_to_dense']:>10.3f}"
        )
    return 0
