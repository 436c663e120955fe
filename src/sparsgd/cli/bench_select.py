"""``sparsgd bench select``: time torch.topk against the topk, sampled and randomk selections.

``topk`` runs the compiled loops where the install built them, ``topk_numpy`` the same
compressor with them switched off.

Every method and a one-read-pass floor (``x.sum()``) are timed in turn in each round on the
same Gaussian vector; the table gives the median ms, the multiple of the floor, the achieved
density and the speed-up over torch.topk, all measured in this one run. --threads sets
torch's intra-op threads (default 1, what the project's launchers give each worker process).
The measuring code, and what every row means, is :mod:`sparsgd.bench.select`; this module
parses the options and prints the table.
"""

from __future__ import annotations

import argparse
import json

from sparsgd.bench.select import measure_selection
from sparsgd.cli.arguments import density, integer

__all__ = ["HELP", "add_arguments", "run"]

HELP = "time torch.topk against the topk, sampled and randomk selections (median ms, speed-up)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--numel", type=integer(1), required=True, help="entries of x, e.g. 1e7")
    parser.add_argument("--density", type=density, required=True, help="rho in (0, 1]")
    parser.add_argument("--repeats", type=integer(1), default=11, help="timed runs (default 11)")
    parser.add_argument(
        "--seed", type=integer(0), default=0, help="seed of x and of the compressors"
    )
    parser.add_argument(
        "--threads",
        type=integer(1),
        default=1,
        help="intra-op CPU threads, as each training worker uses (default 1; see above)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")


def run(args: argparse.Namespace) -> int:
    rows = measure_selection(args.numel, args.density, args.repeats, args.seed, args.threads)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"numel={args.numel} density={args.density} repeats={args.repeats} threads={args.threads}"
        f" floor (x.sum) {rows[0]['floor_ms']:.2f} ms"
    )
    print(f"{'method':<12} {'median ms':>10} {'x floor':>8} {'density':>10} {'speed-up':>9}")
    for row in rows:
        print(
            f"{row['method']:<12} {row['ms']:>10.2f} {row['x_floor']:>7.1f}x "
            f"{row['achieved_density']:>10.5f} {row['speedup_vs_torch_topk']:>8.2f}x"
        )
    return 0
