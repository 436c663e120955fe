"""``sparsgd bench comm``: time the four collectives on P processes in one run.

dense, topk_allgather, gtopk and gtopk_exact, each timed as the slowest rank's median over
--repeats calls, split into select / comm / apply, with the bytes and messages they counted
and their ratios to dense measured in the same run; ``plain_ms`` is a bare gloo collective of
the same bytes. dense is called as the sync step calls it: p written into its staging view
beforehand (untimed), reduced there with no copy. ``local/read`` (``local_x_floor``) is the
local work, select + apply, over one read pass of p timed in the same rounds. With --lab
RATE the ranks run on an emulated cluster of shaped links and each row gains ``model_ms``,
the alpha-beta cost with alpha and beta calibrated on that cluster.
The measuring code, and what every column means, is :mod:`sparsgd.bench.comm` (and
:mod:`sparsgd.bench.lab_comm`); this module parses the options and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from sparsgd.bench.comm import measure_collectives
from sparsgd.bench.lab_comm import measure_on_lab
from sparsgd.cli.arguments import density, integer
from sparsgd.compress.checks import k_from_density
from sparsgd.lab.cluster import LabUnavailable, Rate

__all__ = ["HELP", "add_arguments", "run"]

HELP = "time dense, topk_allgather, gtopk and gtopk_exact on P local processes (median ms, bytes)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=integer(1), required=True, help="P")
    parser.add_argument("--numel", type=integer(1), required=True, help="d, e.g. 1e7")
    parser.add_argument("--density", type=density, required=True, help="rho in (0, 1]")
    parser.add_argument("--repeats", type=integer(1), default=5, help="default 5")
    parser.add_argument("--seed", type=integer(0), default=0, help="default 0")
    parser.add_argument("--threads", type=integer(1), default=1, help="torch threads per process")
    parser.add_argument("--timeout", type=integer(1), default=600, help="seconds for the whole run")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="hand p over to the sparse collectives as the sync step does (reduce(p, rho, "
        "overwrite=True): the residual is written into p, no copy); p is refilled before each "
        "call, untimed. dense is always timed on p written into its staging view",
    )
    parser.add_argument(
        "--lab",
        metavar="RATE",
        default=None,
        help="run on an emulated cluster (sparsgd lab: a network namespace per rank, links "
        "shaped to RATE, e.g. 100mbit; needs root), calibrate the alpha-beta model there first "
        "and add model_ms and plain_ms to each row (bandwidth only, no latency: docs/lab.md)",
    )


def _measure(args: argparse.Namespace) -> list[dict]:
    if args.lab is None:
        return measure_collectives(
            args.workers, args.numel, args.density, args.repeats, args.seed,
            timeout_s=float(args.timeout), threads=args.threads, overwrite=args.overwrite,
        )  # fmt: skip
    if args.overwrite:
        raise SystemExit("sparsgd bench comm: --overwrite is not available with --lab")
    net, rows = measure_on_lab(
        args.workers, Rate.parse(args.lab), args.numel, args.density, args.repeats, args.seed,
        timeout_s=float(args.timeout), threads=args.threads,
    )  # fmt: skip
    print(
        f"lab at {args.lab}: calibrated alpha {net.alpha * 1e6:.1f} us, "
        f"beta {net.beta * 1e9:.3f} ns/B ({8 / net.beta / 1e6:.0f} Mbit/s)",
        file=sys.stderr,
    )
    return rows


def run(args: argparse.Namespace) -> int:
    k = k_from_density(args.density, args.numel)
    try:
        rows = _measure(args)
    except (ValueError, LabUnavailable) as err:
        print(f"sparsgd bench comm: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    where = f"lab nodes, links at {args.lab}" if args.lab else "gloo on 127.0.0.1"
    print(
        f"P={args.workers} processes ({where}, {args.threads} thread(s) each), "
        f"numel={args.numel}, density={args.density} (k={k}), repeats={args.repeats}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'collective':<15} {'median ms':>10} {'select ms':>10} {'comm ms':>9} {'apply ms':>9}"
        f" {'plain ms':>9} {'model ms':>9} {'bytes/rank':>12} {'bytes/dense':>11}"
        f" {'time/dense':>10} {'local/read':>10}"
    )
    for r in rows:
        print(
            f"{r['collective']:<15} {r['median_ms']:>10.2f} {r['select_ms']:>10.2f}"
            f" {r['comm_ms']:>9.2f} {r['apply_ms']:>9.2f} {r.get('plain_ms', math.nan):>9.2f}"
            f" {r.get('model_ms', math.nan):>9.2f} {r['bytes_sent_per_rank']:>12d}"
            f" {r['bytes_ratio_to_dense']:>11.4f} {r['ratio_to_dense']:>10.3f}"
            f" {r['local_x_floor']:>9.1f}x"
        )
    return 0
