"""Run one of the papers' studies and write its results folder.

    sparsgd experiment run gtopk-delta --out results/delta            # full mode
    sparsgd experiment run gtopk-delta --out /tmp/delta --smoke       # seconds, tiny data

The folder receives ``results.json`` (what ran, on which machine, tables, findings and the
series behind the figures), the figures as PNG files, and ``runs/`` with the folder of every
training run (config.json, log.jsonl, summary.json). ``sparsgd report DIR...`` turns one or
more such folders into a markdown report. The console gets each claim with its verdict in
brackets and its rule, or "[smoke run: no verdict]" in smoke mode, whose numbers are no
result. MNIST and Fashion-MNIST are read from --data-dir (or $SPARSGD_DATA); smoke mode uses
embedded data only. See docs/experiments.md.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

import torch

from sparsgd.experiments.registry import EXPERIMENTS, get_experiment
from sparsgd.experiments.runner import run_experiment
from sparsgd.report.markdown import shown_verdict

__all__ = ["HELP", "add_arguments", "command_line", "run"]

HELP = "run one experiment (full mode, or --smoke) into --out DIR"


def _seeds_or_threads(what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{what} must be an integer >= 1; got {text!r}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help=f"one of: {', '.join(EXPERIMENTS)}")
    parser.add_argument("--out", required=True, metavar="DIR", help="results folder")
    parser.add_argument(
        "--smoke", action="store_true", help="the tiny configuration (seconds; for tests)"
    )
    parser.add_argument(
        "--seeds",
        type=_seeds_or_threads("seeds"),
        default=None,
        metavar="N",
        help="run seeds 0..N-1 (default: the experiment's own; 1 in smoke mode)",
    )
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR", help="folder of mnist/ and fashion-mnist/"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="S-SGD studies: read back runs in --out that finished before with the same config "
        "instead of running them again (redraw, or finish an interrupted experiment)",
    )
    parser.add_argument(
        "--threads",
        type=_seeds_or_threads("threads"),
        default=1,
        metavar="N",
        help="torch threads of this process (default 1: on shared or busy cores more threads "
        "wait for each other; worker processes choose their own)",
    )


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, as a user would type it."""
    parts = ["sparsgd", "experiment", "run", args.name, "--out", str(args.out)]
    if args.smoke:
        parts.append("--smoke")
    if args.seeds is not None:
        parts += ["--seeds", str(args.seeds)]
    if args.data_dir is not None:
        parts += ["--data-dir", str(args.data_dir)]
    if args.reuse:
        parts.append("--reuse")
    if args.threads != 1:
        parts += ["--threads", str(args.threads)]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    try:
        get_experiment(args.name)
    except ValueError as err:
        print(f"sparsgd experiment run: error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    results = run_experiment(
        args.name,
        args.out,
        smoke=args.smoke,
        seeds=args.seeds,
        data_dir=args.data_dir,
        reuse=args.reuse,
        command=command_line(args),
    )
    print(f"\n{results.title} ({results.mode} mode, {results.wall_seconds / 60:.1f} min)")
    for finding in results.findings:  # a smoke run checks the pipeline; it is not a result
        print(f"  [{shown_verdict(finding.verdict, results.mode)}] {finding.claim}")
        if finding.rule:
            print(f"      rule: {finding.rule}")
    print(f"results: {args.out}/results.json; report: sparsgd report {args.out}")
    return 0
