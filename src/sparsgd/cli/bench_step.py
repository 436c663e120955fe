"""``sparsgd bench step``: one sync S-SGD step of a model, compress + apply vs forward+backward.

On --workers local ranks (default 1: the collective's local work only, no network), a model
gets a fixed Gaussian mini-batch of --batch inputs of its shape; every step runs forward +
backward, then the whole step of sync/step.py (flat gradient, residual memory, the collective,
gradient write-back, SGD with momentum). One untimed step, then --repeats timed steps; the
table gives the medians in ms (slowest rank per step) of forward+backward, compress (memory +
selection + tree merges), comm, apply (scatter, residual, write-back, optimizer step), a plain
SGD step of the same model for scale, and overhead = (compress + apply) / forward+backward.
The measuring code is :mod:`sparsgd.bench.step`; this module parses the options and prints.
"""

from __future__ import annotations

import argparse
import json

from sparsgd.bench.step import IMAGE_SHAPES, TIMES, measure_step
from sparsgd.cli.arguments import density, integer
from sparsgd.comm import COLLECTIVES

__all__ = ["HELP", "add_arguments", "run"]

HELP = "time one sync step of a model: compress + apply as a share of forward+backward"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=sorted(IMAGE_SHAPES), default="lenet5")
    parser.add_argument(
        "--collective",
        choices=sorted(COLLECTIVES),
        action="append",
        help="repeat for several (default: gtopk and dense)",
    )
    parser.add_argument("--density", type=density, default=0.001, help="rho (default 0.001)")
    parser.add_argument("--batch", type=integer(1), default=64, help="mini-batch (default 64)")
    parser.add_argument("--repeats", type=integer(1), default=11, help="timed steps (default 11)")
    parser.add_argument("--workers", type=integer(1), default=1, help="local ranks (default 1)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")


def run(args: argparse.Namespace) -> int:
    collectives = args.collective or ["gtopk", "dense"]
    rows = measure_step(
        args.model, collectives, args.density, args.batch, args.repeats, args.workers
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"model={args.model} density={args.density} batch={args.batch} "
        f"repeats={args.repeats} workers={args.workers}"
    )
    print(f"{'collective':<15}" + "".join(f"{f:>14}" for f in TIMES) + f"{'overhead':>10}")
    for row in rows:
        cells = "".join(f"{float(row[f]):>14.2f}" for f in TIMES)
        print(f"{row['collective']:<15}{cells}{float(row['overhead']):>9.1%}")
    return 0
