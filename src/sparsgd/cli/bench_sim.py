"""``sparsgd bench sim``: the simulator's peak memory and per-update cost as W grows.

For each W of --workers, a fresh process runs the worker-mode simulation of FNN-3 (d =
199,210) for --steps updates at --density and reports its peak RSS (VmHWM), the RSS added per
worker and the wall ms per computed gradient; then, in this process, dense pushes at W = 1
against a plain SGD loop of the same model (median of --repeats). The measuring code is
:mod:`sparsgd.bench.sim`; this module parses the options and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os

from sparsgd.bench.sim import measure_dense_path, measure_sim

__all__ = ["HELP", "add_arguments", "run"]

HELP = "the simulator's peak RSS and ms per update for several W, and dense pushes vs plain SGD"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def _density(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]; got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers", type=_positive_int, nargs="+", default=[16, 1024], help="W values"
    )
    parser.add_argument("--steps", type=_positive_int, default=1024, help="server updates")
    parser.add_argument("--density", type=_density, default=0.01, help="rho (default 0.01)")
    parser.add_argument("--num-train", type=_positive_int, default=8192, help="samples")
    parser.add_argument("--dense-steps", type=_positive_int, default=200, help="dense path")
    parser.add_argument("--repeats", type=_positive_int, default=3, help="dense path repeats")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead")


def run(args: argparse.Namespace) -> int:
    rows = measure_sim(args.workers, args.steps, args.density, args.num_train)
    dense = measure_dense_path(args.dense_steps, args.repeats, args.num_train)
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"load": load, "workers": rows, "dense_path": dense}, indent=2))
        return 0
    print(f"steps={args.steps} density={args.density}  load {load[0]:.2f} {load[1]:.2f}")
    print(f"{'W':>6} {'peak RSS MB':>12} {'KB/worker':>10} {'ms/update':>10}")
    for row in rows:
        print(
            f"{row['workers']:>6} {row['rss_mb']:>12.0f} {row['per_worker_kb']:>10.0f} "
            f"{row['update_ms']:>10.2f}"
        )
    print(
        f"dense pushes (W=1): {dense['sim_ms']:.2f} ms/update; plain SGD {dense['plain_ms']:.2f} "
        f"ms/step; ratio {dense['dense_ratio']:.2f}x"
    )
    return 0
