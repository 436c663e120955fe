"""``sparsgd bench sim``: the simulator's peak memory and per-update cost as W grows.

For each W of --workers, a fresh process runs the worker-mode simulation of FNN-3 (d =
199,210) for --steps updates at --density and reports its peak RSS (VmHWM), the RSS added per
worker and the wall ms per update; then one process times every W in turn, --chunk updates
each per round, and reports each W's per-update cost against the first W's as the median
ratio over the rounds (the 10 % goal: within [0.9, 1.1]); then dense pushes at W = 1
against a plain SGD loop of the same model, in turn (median over --repeats rounds). The load
average is printed before and after. The measuring code is :mod:`sparsgd.bench.sim`; this
module parses the options and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os

from sparsgd.bench.sim import measure_dense_path, measure_sim, measure_update_ratio
from sparsgd.cli.arguments import density, integer
from sparsgd.compress.spill import check_residual_dir

__all__ = ["HELP", "add_arguments", "run"]

HELP = "the simulator's peak RSS and ms per update for several W, and dense pushes vs plain SGD"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers", type=integer(1), nargs="+", default=[16, 1024], help="W values"
    )
    parser.add_argument("--steps", type=integer(1), default=1024, help="server updates")
    parser.add_argument("--density", type=density, default=0.01, help="rho (default 0.01)")
    parser.add_argument("--num-train", type=integer(1), default=8192, help="samples")
    parser.add_argument(
        "--chunk", type=integer(1), default=64, help="updates per W per round of the ratio"
    )
    parser.add_argument(
        "--dense-steps", type=integer(1), default=100, help="dense path: updates per round"
    )
    parser.add_argument("--repeats", type=integer(1), default=15, help="dense path: rounds")
    parser.add_argument(
        "--residual-dir",
        type=_directory,
        metavar="DIR",
        help="keep the residuals in a file in DIR (train's --residual-dir) in the W rows and "
        "the interleaved ratio",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object instead")


def run(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()
    where = args.residual_dir
    rows = measure_sim(args.workers, args.steps, args.density, args.num_train, where)
    ratio = measure_update_ratio(
        args.workers, args.steps, args.density, args.num_train, args.chunk, where
    )
    dense = measure_dense_path(args.dense_steps, args.repeats, args.num_train)
    load_after = os.getloadavg()
    if args.json:
        report = {"load_before": load_before, "load_after": load_after, "workers": rows}
        print(json.dumps({**report, "update_ratio": ratio, "dense_path": dense}, indent=2))
        return 0
    print(f"steps={args.steps} density={args.density}  load {_load(load_before)}")
    if where is not None:
        print(f"residuals in a file in {where} (kept by the kernel, not in the RSS below)")
    file_column = f" {'file MB':>8}" if where is not None else ""
    print(f"{'W':>6} {'peak RSS MB':>12} {'KB/worker':>10} {'ms/update':>10}{file_column}")
    for row in rows:
        file_mb = f" {row['residual_file_mb']:>8.0f}" if where is not None else ""
        print(
            f"{row['workers']:>6} {row['rss_mb']:>12.0f} {row['per_worker_kb']:>10.0f} "
            f"{row['update_ms']:>10.2f}{file_mb}"
        )
    first = ratio["workers"][0]
    print(f"interleaved, {ratio['rounds']} rounds of {ratio['chunk']} updates per W:")
    columns = ("update_ms", "ratio", "ratio_range", "best_ratio")
    for w, ms, r, (lo, hi), best in zip(
        ratio["workers"], *(ratio[c] for c in columns), strict=True
    ):
        within = "within 10 %" if abs(r - 1) <= 0.1 else "NOT within 10 %"
        print(
            f"{w:>6} {ms:>8.2f} ms/update  x{r:.3f} of W={first} "
            f"(rounds {lo:.3f}-{hi:.3f}, best rounds x{best:.3f}) {within}"
        )
    lo, hi = dense["ratio_range"]
    print(
        f"dense pushes (W=1): {dense['sim_ms']:.2f} ms/update; plain SGD {dense['plain_ms']:.2f} "
        f"ms/step; ratio {dense['dense_ratio']:.2f}x (rounds {lo:.2f}-{hi:.2f}, best rounds "
        f"{dense['best_ratio']:.2f}x)"
    )
    print(f"load after {_load(load_after)}")
    return 0


def _directory(text: str) -> str:
    try:
        return str(check_residual_dir(text, "--residual-dir"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)
