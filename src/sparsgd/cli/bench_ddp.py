"""``sparsgd bench ddp``: one DDP training step with sparsgd's hook, PowerSGD and all-reduce.

On --workers local processes (gloo, one thread each) every rank trains the same MLP of
--layers Linear layers of --width x --width and times one step (forward, backward, SGD step)
with DDP's default all-reduce, torch's PowerSGD hook (rank 1), and sparsgd's gTop-k hook at
--density with one bucket, with many buckets (--bucket-mb), with many buckets but the
collective inside the hook (overlap off) and with scope "model". A step's time is that of the
slowest rank; the table gives the median over --repeats, the median CPU time of the busiest
rank's process in a step, the ratio to all-reduce, and the sparse collectives' time per step
split into select / comm / apply, all measured in this one run. With --lab RATE the ranks run
on an emulated cluster (a network namespace each, links shaped to RATE) instead of loopback.
The measuring code is :mod:`sparsgd.bench.ddp`; this module parses the options and prints the
table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from sparsgd.bench.ddp import measure_ddp
from sparsgd.cli.arguments import density, integer, positive_number
from sparsgd.lab.cluster import LabUnavailable, Rate

__all__ = ["HELP", "add_arguments", "run"]

HELP = "time a DDP step: sparsgd's hook (1 and many buckets) vs PowerSGD vs all-reduce"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=integer(1), default=2, help="P (default 2)")
    parser.add_argument("--width", type=integer(1), default=512, help="units per layer")
    parser.add_argument("--layers", type=integer(1), default=8, help="Linear layers")
    parser.add_argument("--density", type=density, default=0.01, help="rho (default 0.01)")
    parser.add_argument(
        "--bucket-mb", type=positive_number, default=1.0, help="DDP bucket_cap_mb (many)"
    )
    parser.add_argument("--repeats", type=integer(1), default=11, help="timed steps")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead")
    parser.add_argument(
        "--lab",
        metavar="RATE",
        default=None,
        help="run on an emulated cluster (sparsgd lab: a network namespace per rank, links "
        "shaped to RATE, e.g. 100mbit; needs root) instead of loopback: there the wire, not "
        "the CPU, can decide a step, and the hook's overlap with backward shows",
    )


def run(args: argparse.Namespace) -> int:
    try:
        rate = None if args.lab is None else Rate.parse(args.lab)
        rows = measure_ddp(
            args.workers, args.width, args.layers, args.density, args.bucket_mb, args.repeats,
            rate=rate,
        )  # fmt: skip
    except (ValueError, LabUnavailable) as err:
        print(f"sparsgd bench ddp: error: {err}", file=sys.stderr)
        return 2
    load = os.getloadavg()
    where = f"lab links at {args.lab}" if args.lab else "loopback"
    settings = (
        f"P={args.workers} ({where}) width={args.width} layers={args.layers} "
        f"density={args.density} bucket_mb={args.bucket_mb} repeats={args.repeats}"
    )
    if args.json:
        print(json.dumps({"settings": settings, "load": load, "rows": rows}, indent=2))
        return 0
    print(f"{settings}  load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"{'variant':<20} {'step ms':>9} {'cpu ms':>8} {'collectives':>12} {'vs allreduce':>13}"
        f" {'select':>7} {'comm':>7} {'apply':>7}"
    )
    for row in rows:
        print(
            f"{row['variant']:<20} {row['step_ms']:>9.2f} {row['cpu_ms']:>8.2f} "
            f"{row['collectives_per_step']:>12.1f} {row['ratio_to_allreduce']:>12.2f}x"
            f" {row['select_ms']:>7.2f} {row['comm_ms']:>7.2f} {row['apply_ms']:>7.2f}"
        )
    return 0
