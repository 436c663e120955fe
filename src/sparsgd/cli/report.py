"""Turn experiment results folders into one markdown report with tables and PNG figures.

    sparsgd report results/delta results/comm --out docs/results.md

Each folder must hold the ``results.json`` that ``sparsgd experiment run`` wrote. With --out
the figures are copied next to the report (``<stem>_figures/<experiment>/``) so the two move
together; without it the markdown goes to standard output and links into the folders.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from sparsgd.experiments.registry import EXPERIMENTS
from sparsgd.report.build import build_report

__all__ = ["HELP", "add_arguments", "run"]

HELP = "write a markdown report (tables, figures, claim-by-claim verdicts) from results folders"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folders", nargs="+", metavar="DIR", help="results folders")
    parser.add_argument("--out", default=None, metavar="FILE", help="markdown file to write")


def run(args: argparse.Namespace) -> int:
    command = shlex.join(
        ["sparsgd", "report", *args.folders, *(["--out", args.out] if args.out else [])]
    )
    try:
        text = build_report(args.folders, args.out, command, expected=tuple(EXPERIMENTS))
    except (FileNotFoundError, ValueError) as err:
        print(f"sparsgd report: error: {err}", file=sys.stderr)
        return 2
    if args.out is None:
        print(text)
    else:
        print(f"wrote {args.out}")
    return 0
