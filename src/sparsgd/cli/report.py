"""Turn experiment results folders into one markdown report with tables and PNG figures.

    sparsgd report docs/study_results/* --out docs/results.md
    sparsgd report docs/study_results --out docs/results.md --check

Each folder must hold the ``results.json`` that ``sparsgd experiment run`` wrote (a folder
without one stands for its sub-folders that hold one). Nothing is run: the run folders a study
wrote need not be there. With --out the figures go next to the report
(``<stem>_figures/<experiment>/``), copied, or drawn again from the panels ``results.json``
recorded when a PNG is absent (always, with --redraw); without --out the markdown goes to
standard output and links into the folders. --check writes nothing and exits 1 when the
report in --out differs from what the folders give.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from sparsgd.experiments.registry import EXPERIMENTS
from sparsgd.report.build import build_report

__all__ = ["HELP", "add_arguments", "run"]

HELP = "write a markdown report (tables, figures, claim-by-claim verdicts) from results folders"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folders", nargs="+", metavar="DIR", help="results folders")
    parser.add_argument("--out", default=None, metavar="FILE", help="markdown file to write")
    parser.add_argument(
        "--redraw",
        action="store_true",
        help="draw every figure again from the panels results.json recorded, not copy its PNG",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if --out FILE is not the report these folders give",
    )


def _command(args: argparse.Namespace) -> str:
    """The command that writes this report (--check and --redraw do not change the text)."""
    out = ["--out", args.out] if args.out else []
    return shlex.join(["sparsgd", "report", *args.folders, *out])


def run(args: argparse.Namespace) -> int:
    if args.check and args.out is None:
        print("sparsgd report: error: --check needs --out FILE to compare with", file=sys.stderr)
        return 2
    try:
        text = build_report(
            args.folders,
            args.out,
            _command(args),
            expected=tuple(EXPERIMENTS),
            redraw=args.redraw,
            write=not args.check,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"sparsgd report: error: {err}", file=sys.stderr)
        return 2
    if args.check:
        out = Path(args.out)
        if out.is_file() and out.read_text() == text:
            print(f"{args.out} is the report these folders give")
            return 0
        print(f"{args.out} differs from the report these folders give; run {_command(args)}")
        return 1
    if args.out is None:
        print(text)
    else:
        print(f"wrote {args.out}")
    return 0
