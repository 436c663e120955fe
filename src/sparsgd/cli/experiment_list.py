"""List the papers' studies that ``sparsgd experiment run`` can reproduce.

One line per experiment: its name, what it measures, and how long its full mode runs on 2 CPU
cores (measured or estimated, as the experiment states). ``--smoke`` runs take seconds.
"""

from __future__ import annotations

import argparse

from sparsgd.experiments.registry import EXPERIMENTS

__all__ = ["HELP", "add_arguments", "run"]

HELP = "list the experiments: name, what they measure, full-mode running time"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbose", action="store_true", help="also say how each running time was obtained"
    )


def run(args: argparse.Namespace) -> int:
    width = max(len(name) for name in EXPERIMENTS)
    print(f"{'name':<{width}}  {'full mode':>9}  what it measures")
    for name, e in EXPERIMENTS.items():
        print(f"{name:<{width}}  {f'~{e.full_minutes:g} min':>9}  {e.summary}")
        if args.verbose:
            print(f"{'':<{width}}  {'':>9}  ({e.estimate}; {e.default_seeds} seed(s))")
    print("\nrun one: sparsgd experiment run NAME --out DIR [--smoke] [--seeds N]")
    return 0
