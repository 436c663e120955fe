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
from sparsgd.cli.arguments import density, integer

__all__ = ["HELP", "add_arguments", "run"]

HELP = "the simulator's peak RSS and ms per update for several W, and dense pushes vs plain SGD"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers", type=integer(1), nargs="+", default=[16, 1024], help="W values"
    )
    parser.add_argument("--steps", type=integer(1), default=1024, help="server updates")
    parser.add_argument("--density", type=density, default=0.01, help="rho (default 0.01)")
    parser.add_argument("--num-train", type=integer(1), default=8192, help="samples")
    parser.add_argument("--dense-steps", type=integer(1), default=200, help="dense path")
    parser.add_argument("--repeats", type=integer(1), default=3, help="dense path repeats")
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
