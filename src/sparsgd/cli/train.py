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
docs/async.md. Full guide: docs/training.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sparsgd.cli import train_async
from sparsgd.compress import MEMORIES
from sparsgd.data import DATASETS
from sparsgd.models import MODELS
from sparsgd.runs import RunDirError, closing_lines
from sparsgd.runs.tensorboard import require_tensorboard
from sparsgd.sync.config import TOPK_SELECTIONS, SyncConfig
from sparsgd.sync.launch import WorkerFailed
from sparsgd.sync.train import RESUME_OVERRIDES, resume, train

__all__ = ["HELP", "add_arguments", "run"]

HELP = "train a model with dense / Top-k / gTop-k S-SGD on P workers (or async SGD)"
MODES = ("sync", "async", "sim")
DEFAULTS = SyncConfig(out="")  # the embedded demo's settings


def _floats(text: str) -> tuple[float, ...]:
    """``"30,60"`` -> ``(30.0, 60.0)``; the empty string gives ``()``."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated epochs such as 30,60; got {text!r}"
        ) from None


def _add_data_model(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model and data")
    g.add_argument(
        "--model",
        default=DEFAULTS.model,
        metavar="NAME",
        help=f"network: {', '.join(MODELS)} (default %(default)s)",
    )
    g.add_argument(
        "--dataset",
        default=DEFAULTS.dataset,
        metavar="NAME",
        help=f"data set: {', '.join(DATASETS)} (default %(default)s, embedded)",
    )
    g.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder of the data files (mnist, fashion-mnist, cifar10)",
    )
    g.add_argument(
        "--data-file",
        default=None,
        metavar="FILE",
        help="--dataset npz: a .npz file with x_train, y_train, x_test, y_test (docs/data.md)",
    )
    g.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        metavar="N",
        help="language data: keep the first N tokens of each split (quick runs)",
    )
    g.add_argument(
        "--hidden-size",
        type=int,
        default=None,
        metavar="H",
        help="hidden width of fnn3 / lstm instead of the model's default",
    )
    g.add_argument(
        "--reduced", action="store_true", help="the model's small CPU setting (lstm: 2 x 200 units)"
    )


def _add_method(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("gradient aggregation")
    g.add_argument(
        "--method",
        default=DEFAULTS.method,
        metavar="NAME",
        help="dense (ring allreduce), topk (Top-k S-SGD: all-gather, O(kP)), gtopk "
        "(gTop-k tree, O(k log P)), gtopk_exact (tree's indices, exact sums) "
        "(default %(default)s)",
    )
    g.add_argument(
        "--compressor",
        default=None,
        metavar="NAME",
        help=f"topk's local selection: {', '.join(TOPK_SELECTIONS)} (default: exact top-k)",
    )
    g.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="H",
        help="the fixed |x| >= H of --compressor threshold",
    )
    g.add_argument(
        "--density",
        type=float,
        default=DEFAULTS.density,
        metavar="RHO",
        help="fraction of entries each worker sends, in (0, 1]; k = max(1, "
        "floor(RHO d)) (default %(default)s)",
    )
    g.add_argument(
        "--memory",
        default=DEFAULTS.memory,
        metavar="NAME",
        help=f"error feedback: {', '.join(MEMORIES)} (dgc: DGC momentum correction, "
        "uses --momentum) (default %(default)s)",
    )
    g.add_argument(
        "--density-warmup",
        type=float,
        default=0.0,
        metavar="EPOCHS",
        help="DGC density warm-up: 0.25, 0.0625, 0.0156, 0.004 then RHO over the "
        "first EPOCHS epochs (default 0: none)",
    )
    g.add_argument(
        "--clip",
        type=float,
        default=None,
        metavar="NORM",
        help="clip each worker's gradient to this L2 norm before error feedback",
    )


def _add_optimizer(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("optimisation (applied after aggregation)")
    g.add_argument(
        "--lr", type=float, default=DEFAULTS.lr, help="learning rate (default %(default)s)"
    )
    g.add_argument(
        "--warmup-epochs",
        type=float,
        default=0.0,
        metavar="E",
        help="linear learning-rate warm-up over E epochs (default 0)",
    )
    g.add_argument(
        "--lr-decay-epochs",
        type=_floats,
        default=(),
        metavar="E1,E2",
        help="multiply the learning rate by --lr-decay-factor at these epochs",
    )
    g.add_argument(
        "--lr-decay-factor",
        type=float,
        default=DEFAULTS.lr_decay_factor,
        metavar="F",
        help="(default %(default)s)",
    )
    g.add_argument(
        "--momentum",
        type=float,
        default=DEFAULTS.momentum,
        help="SGD momentum (with --memory dgc: the momentum-correction factor) "
        "(default %(default)s)",
    )
    g.add_argument("--weight-decay", type=float, default=0.0, metavar="WD", help="(default 0)")
    g.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULTS.batch_size,
        metavar="B",
        help="samples (language: columns) per worker per step (default %(default)s)",
    )
    g.add_argument(
        "--epochs",
        type=float,
        default=DEFAULTS.epochs,
        help="passes over the training set (default %(default)s)",
    )
    g.add_argument(
        "--steps", type=int, default=None, help="run exactly this many steps instead of --epochs"
    )
    g.add_argument(
        "--bptt",
        type=int,
        default=DEFAULTS.bptt,
        metavar="L",
        help="language models: truncated back-propagation length (default %(default)s)",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=DEFAULTS.seed,
        help="seed of everything random; same seed, same run (default %(default)s)",
    )


def _add_run(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("workers and run folder")
    g.add_argument(
        "--mode",
        choices=MODES,
        default="sync",
        help="sync: S-SGD (this page); async: parameter server with real worker "
        "processes; sim: deterministic one-process simulation of async SGD",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=DEFAULTS.workers,
        metavar="P",
        help="worker processes to start (ignored under torchrun) (default %(default)s)",
    )
    g.add_argument("--device", default="cpu", help="cpu or cuda (NCCL, one GPU per worker)")
    g.add_argument(
        "--timeout",
        dest="timeout_s",
        type=float,
        default=DEFAULTS.timeout_s,
        metavar="SECONDS",
        help="a collective waiting longer fails the run (default %(default)s)",
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
    g.add_argument(
        "--log-every",
        type=int,
        default=DEFAULTS.log_every,
        metavar="N",
        help="one log.jsonl record every N steps (and at every epoch end)",
    )
    g.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="N",
        help="checkpoint every N steps (default 0: at every epoch end); always at the end",
    )
    g.add_argument(
        "--verify-every",
        type=int,
        default=0,
        metavar="N",
        help="every N steps compare a digest of every worker's parameters (default 0: never)",
    )
    g.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar (it is off anyway when stderr is not a terminal)",
    )
    g.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard events to DIR/tensorboard (needs tensorboard)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_model(parser)
    _add_method(parser)
    _add_optimizer(parser)
    _add_run(parser)
    train_async.add_arguments(parser)  # the options of --mode async / sim


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


def _config_fields() -> list[str]:
    return [name for name in SyncConfig.__dataclass_fields__ if name not in ("out", "extra")]


def _default_out() -> str:
    base = Path("runs") / f"train-{datetime.now():%Y%m%d-%H%M%S}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return str(out)


def _config(args: argparse.Namespace) -> SyncConfig:
    values = {name: getattr(args, name) for name in _config_fields()}
    return SyncConfig(out=args.out or _default_out(), **values)


def _resume_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Options given with --resume: those a resumed run may change, or an error naming them."""
    defaults = argparse.ArgumentParser()
    _add_data_model(defaults)
    _add_method(defaults)
    _add_optimizer(defaults)
    _add_run(defaults)
    default = vars(defaults.parse_args([]))
    changed = {n for n in _config_fields() if getattr(args, n) != default[n]}
    refused = sorted(changed - RESUME_OVERRIDES)
    if refused:
        flag = {a.dest: a.option_strings[0] for a in defaults._actions if a.option_strings}
        names = ", ".join(flag[n] for n in refused)
        allowed = ", ".join(flag[n] for n in sorted(RESUME_OVERRIDES))
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


def run(args: argparse.Namespace) -> int:
    if args.mode != "sync":
        return int(train_async.run(args) or 0)
    try:
        if args.tensorboard:
            require_tensorboard()
        if args.resume is not None:
            out = args.resume
            summary = resume(out, setup=worker_logging, **_resume_overrides(args))
        else:
            config = _config(args)
            out = config.out
            summary = train(config, overwrite=args.overwrite, setup=worker_logging)
    except WorkerFailed as err:
        print(f"sparsgd train: a worker failed, the run stopped.\n{err}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, RunDirError, RuntimeError, OSError) as err:
        print(f"sparsgd train: error: {err}", file=sys.stderr)
        return 2
    if summary:  # empty on torchrun ranks other than 0
        _print_summary(summary, out)
    return 0
