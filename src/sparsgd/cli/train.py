"""Data-parallel training with dense, Top-k or gTop-k S-SGD (``--mode sync``, the default).

With no option at all this is the embedded demo: 4 workers train a 3-layer MLP on
scikit-learn's 8x8 digits (no download) with gTop-k S-SGD and error feedback, print the loss
and test accuracy after every epoch, and end with how many bytes each worker sent compared with
what dense S-SGD would have sent.

Workers: ``--workers P`` starts P processes on this machine (gloo on CPU, NCCL with
``--device cuda``). Under ``torchrun`` the same command runs as the rank torchrun gives it
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), across machines too:

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m sparsgd.cli.main train --model lenet5 --dataset mnist --data-dir DIR --out runs/x

Every run writes one folder (--out): config.json, log.jsonl, summary.json, checkpoints/.
``--resume DIR`` continues that run from its last checkpoint, exactly. ``--mode async`` and
``--mode sim`` run asynchronous SGD with a parameter server (real or simulated) instead; see
docs/async.md. ``--recipe NAME`` starts from a training preset (listed at the end of --help;
sparsgd.sync.recipes): the options given explicitly override what it sets, and --lr is the
rate it rescales (momentum-free: x10). Full guide: docs/training.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sparsgd.cli import train_async
from sparsgd.cli.options import (
    add_options,
    flag_of,
    given_options,
    option_fields,
    option_values,
)
from sparsgd.comm.launch import LaunchOptions, WorkerFailed
from sparsgd.runs import RunDirError, closing_lines
from sparsgd.runs.tensorboard import require_tensorboard
from sparsgd.sync.config import SyncConfig
from sparsgd.sync.recipes import RECIPES, RESCALED_FIELDS, apply_recipe
from sparsgd.sync.train import RESUME_OVERRIDES, resume, train

__all__ = ["HELP", "add_arguments", "run"]

HELP = "train a model with dense / Top-k / gTop-k S-SGD on P workers (or async SGD)"
MODES = ("sync", "async", "sim")
RUN_GROUP = "workers and run folder"  # the option group of SyncConfig's run fields


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per SyncConfig field (sparsgd.cli.options), then the run-folder options."""
    groups = add_options(parser, SyncConfig, notes={"recipe": "one of: " + ", ".join(RECIPES)})
    parser.epilog = _recipe_list()
    g = groups[RUN_GROUP]
    g.add_argument(
        "--mode",
        choices=MODES,
        default="sync",
        help="sync: S-SGD (this page); async: parameter server with real worker "
        "processes; sim: deterministic one-process simulation of async SGD",
    )
    g.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="run folder (default runs/train-<date>-<time>); must be new or empty",
    )
    g.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the run in DIR from its last checkpoint, with its own config "
        "(only --epochs, --steps, --no-progress, --tensorboard and --timeout may change)",
    )
    g.add_argument(
        "--overwrite", action="store_true", help="replace the run files of a used --out folder"
    )
    train_async.add_arguments(parser)  # the options of --mode async / sim


def _recipe_list() -> str:
    """The recipes of --recipe, one paragraph each, for the end of ``--help``."""
    lines = ["recipes (--recipe NAME, --mode sync; sparsgd.sync.recipes, docs/training.md):"]
    for recipe in RECIPES.values():
        text = textwrap.fill(
            recipe.summary,
            90,
            initial_indent="    ",
            subsequent_indent="    ",
            break_on_hyphens=False,
        )
        lines += [f"  {recipe.name}", text]
    return "\n".join(lines)


class _TqdmHandler(logging.Handler):
    """Log lines on stdout through ``tqdm.write``, so that they do not break a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stdout)


def worker_logging(rank: int) -> None:
    """Runs first in every worker: rank 0 prints sparsgd's INFO lines, the others warnings."""
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("sparsgd")
    root.addHandler(handler)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    root.propagate = False


def _default_out() -> str:
    base = Path("runs") / f"train-{datetime.now():%Y%m%d-%H%M%S}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return str(out)


def _config(args: argparse.Namespace) -> SyncConfig:
    """The options as a config; with --recipe: the recipe applied to them, then every option
    given explicitly set again (but --lr, which the recipe rescales rather than sets)."""
    values = option_values(args, SyncConfig)
    name = values.pop("recipe")
    config = SyncConfig(out=args.out or _default_out(), **values)
    if name is None:
        return config
    explicit = (given_options(args) & values.keys()) - RESCALED_FIELDS
    return replace(apply_recipe(config, name), **{n: values[n] for n in explicit})


def _resume_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Options given with --resume: those a resumed run may change, or an error naming them."""
    options = {f.name: f for f in option_fields(SyncConfig)}
    changed = {n for n, f in options.items() if getattr(args, n) != f.default}
    refused = sorted(changed - RESUME_OVERRIDES)
    if refused:
        names = ", ".join(flag_of(options[n]) for n in refused)
        allowed = ", ".join(flag_of(options[n]) for n in sorted(RESUME_OVERRIDES))
        raise ValueError(
            f"--resume continues a run with its own config; cannot change {names} "
            f"(may change: {allowed})"
        )
    if args.out is not None and Path(args.out) != Path(args.resume):
        raise ValueError(f"--out {args.out} and --resume {args.resume} name different folders")
    if args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other; got both")
    return {name: getattr(args, name) for name in changed}


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.3f} MB"


def _print_summary(summary: dict[str, Any], out: str) -> None:
    metric = "final_test_accuracy" if "final_test_accuracy" in summary else "final_test_perplexity"
    value = summary[metric]
    shown = (
        f"test accuracy {value:.2%}" if metric.endswith("accuracy") else f"perplexity {value:.2f}"
    )
    print(
        f"done: {shown} after {summary['steps']} steps ({summary['epochs']:.2f} epochs) of "
        f"{summary['method']} on {summary['workers']} workers"
    )
    sent = summary["bytes_sent_per_rank"]
    dense = summary["dense_bytes_per_rank"]
    print("bytes sent per worker: " + ", ".join(_megabytes(b) for b in sent))
    if dense:
        mean = sum(sent) / len(sent)
        print(
            f"dense S-SGD would have sent {_megabytes(dense)} per worker: this run sent "
            f"{mean / dense:.2%} of that ({dense / max(mean, 1):.1f}x less)"
        )
    print(f"run folder: {out} (config.json, log.jsonl, summary.json, checkpoints/)")
    print("\n".join(closing_lines(summary)))


def run(args: argparse.Namespace, placement: LaunchOptions | None = None) -> int:
    """``sparsgd train``; ``placement`` puts the ranks elsewhere (``sparsgd lab train``)."""
    if args.mode != "sync":
        return int(train_async.run(args) or 0)
    try:
        train_async.refuse_other_modes(args)
        if args.tensorboard:
            require_tensorboard()
        if args.resume is not None:
            out = args.resume
            summary = resume(out, setup=worker_logging, **_resume_overrides(args))
        else:
            config = _config(args)
            out = config.out
            summary = train(
                config, overwrite=args.overwrite, setup=worker_logging, placement=placement
            )
    except WorkerFailed as err:
        print(f"sparsgd train: a worker failed, the run stopped.\n{err}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, RunDirError, RuntimeError, OSError) as err:
        print(f"sparsgd train: error: {err}", file=sys.stderr)
        return 2
    if summary:  # empty on torchrun ranks other than 0
        _print_summary(summary, out)
    return 0
