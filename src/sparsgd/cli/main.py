"""``sparsgd`` command line: one subcommand per module of this package.

Each subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; the explicit table below is the whole registry.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sparsgd.comm.launch import Interrupted

__all__ = ["build_parser", "main"]

# name -> module; nested groups (``bench select``) map to a dict of their own.
SUBCOMMANDS: dict[str, str | dict[str, str]] = {
    "train": "sparsgd.cli.train",
    "bench": {
        "select": "sparsgd.cli.bench_select",
        "comm": "sparsgd.cli.bench_comm",
        "step": "sparsgd.cli.bench_step",
        "ddp": "sparsgd.cli.bench_ddp",
        "sim": "sparsgd.cli.bench_sim",
    },
    "experiment": {
        "list": "sparsgd.cli.experiment_list",
        "run": "sparsgd.cli.experiment_run",
    },
    "report": "sparsgd.cli.report",
    "lab": {
        "train": "sparsgd.cli.lab_train",
        "check": "sparsgd.cli.lab_check",
    },
}

GROUP_HELP = {
    "bench": "micro-benchmarks that print ratios measured in one run (median of repeats)",
    "experiment": "the papers' studies as runnable experiments (list them, run one)",
    "lab": "an emulated cluster on this machine: network namespaces, links shaped to a rate",
}


def _add(sub: argparse._SubParsersAction, name: str, module_name: str) -> None:
    module = importlib.import_module(module_name)
    parser = sub.add_parser(
        name,
        help=module.HELP,
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparsgd",
        description=(
            "Communication-efficient distributed SGD by gradient sparsification: "
            "Top-k / gTop-k S-SGD and sparsified asynchronous SGD on torch.distributed."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, target in SUBCOMMANDS.items():
        if isinstance(target, str):
            _add(sub, name, target)
            continue
        group = sub.add_parser(name, help=GROUP_HELP[name], description=GROUP_HELP[name])
        group_sub = group.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")
        for child, module_name in target.items():
            _add(group_sub, child, module_name)
        group.set_defaults(_run=None, _group=group)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        (getattr(args, "_group", None) or parser).print_help()
        return 2
    try:
        return int(run(args) or 0)
    except Interrupted as stop:  # the launcher forwarded it to every rank and stopped them
        print(f"sparsgd: {stop}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("sparsgd: stopped by SIGINT", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
