"""``sparsgd lab train``: ``sparsgd train`` with one rank per node of an emulated cluster.

    sparsgd lab train --rate 100mbit --workers 4 --method gtopk --density 0.001 --steps 200

builds P network namespaces joined by one bridge, every link shaped to --rate in both
directions (Linux tbf), runs rank r of the training in namespace r, and always tears the lab
down: at the end, on an error, on Ctrl-C and on SIGTERM. Every ``sparsgd train`` option works
as there (``--mode sync`` only; no --resume). Needs root and iproute2; ``sparsgd lab check``
says what is missing. It emulates bandwidth, not latency: the links add no delay beyond the
queueing that holds the rate. See docs/lab.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from sparsgd.cli import train as train_cli
from sparsgd.lab.cluster import Cluster, LabUnavailable, Rate
from sparsgd.lab.placement import lab_options

__all__ = ["HELP", "add_arguments", "run"]

HELP = "sparsgd train on an emulated cluster: a network namespace per rank, links shaped to a rate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    lab = parser.add_argument_group("network lab")
    lab.add_argument(
        "--rate",
        required=True,
        metavar="RATE",
        help="every link's rate, each direction, e.g. 10mbit, 100mbit, 1gbit, 10gbit "
        "(bandwidth only: no latency is added)",
    )
    train_cli.add_arguments(parser)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through the lab's teardown


def run(args: argparse.Namespace) -> int:
    try:
        rate = Rate.parse(args.rate)
        if args.mode != "sync":
            raise ValueError(f"sparsgd lab train runs --mode sync only; got --mode {args.mode}")
        if args.resume is not None:
            raise ValueError("sparsgd lab train starts runs; resume one with sparsgd train")
    except ValueError as err:
        print(f"sparsgd lab train: error: {err}", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        with Cluster(args.workers, rate) as cluster:
            print(f"lab {cluster.lab_id}: {args.workers} nodes, links at {rate} each way")
            return train_cli.run(args, placement=lab_options(cluster, args.timeout_s))
    except LabUnavailable as err:
        print(f"sparsgd lab train: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sparsgd lab train: stopped; the lab is torn down", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
