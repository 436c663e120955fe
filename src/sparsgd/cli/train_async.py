"""``sparsgd train --mode async`` and ``--mode sim``: asynchronous SGD with a parameter server.

``--mode async`` starts one server process and ``--workers W`` worker processes (gloo on
this machine); ``--mode sim`` runs the same server code in one process with simulated workers
on a simulated clock, or with staleness drawn per update (``--staleness``). See docs/async.md.

    sparsgd train --mode sim --workers 16 --policy staleness_aware --density 0.01
    sparsgd train --mode sim --staleness poisson:4 --model lenet5 --dataset mnist --data-dir D
    sparsgd train --mode async --workers 3 --slowdown 1,1,4 --sparse-downlink --steps 300

Options shared with ``--mode sync`` keep their meaning where it carries over: ``--method
dense`` sends everything, any other method means worker-side top-k (a parameter server has
no tree to merge); ``--compressor`` picks another selection; ``--momentum`` is the DGC factor
with ``--memory dgc`` (``--server-momentum`` is momentum at the server); ``--steps`` counts
server updates, and ``--epochs E`` means E * train size / batch size updates.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.launcher import AsyncRunFailed, run_async
from sparsgd.asynchronous.policies import POLICIES
from sparsgd.asynchronous.problem import Problem
from sparsgd.asynchronous.spec import describe_kinds
from sparsgd.asynchronous.speed import TIME_DISTRIBUTIONS
from sparsgd.runs import RunDir, RunDirError, closing_lines
from sparsgd.sim.network_clock import NETWORK_PRESETS
from sparsgd.sim.sim_run import run_simulation
from sparsgd.sim.staleness import STALENESS_DISTRIBUTIONS

__all__ = ["add_arguments", "run"]

# sync-only options and the value that means "not used"
SYNC_ONLY = {
    "warmup_epochs": 0.0,
    "lr_decay_epochs": (),
    "weight_decay": 0.0,
    "clip": None,
    "density_warmup": 0.0,
    "max_tokens": None,
    "data_file": None,
    "reduced": False,
    "verify_every": 0,
    "tensorboard": False,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``--mode async`` / ``--mode sim`` (the shared ones come from train.py)."""
    g = parser.add_argument_group("asynchronous SGD (--mode async | sim, docs/async.md)")
    _add_policy(g)
    _add_speed_and_clock(g)


def _add_policy(g: argparse._ArgumentGroup) -> None:
    policies = "; ".join(entry.syntax for entry in POLICIES.values())
    g.add_argument(
        "--policy",
        default="vanilla",
        metavar="NAME",
        help=f"server update rule: {policies} (default %(default)s)",
    )
    g.add_argument(
        "--server-momentum",
        type=float,
        default=0.0,
        metavar="MU",
        help="momentum at the server: u = MU u + eta(tau) d; x -= u (default 0)",
    )
    g.add_argument(
        "--damping-beta",
        type=float,
        default=0.1,
        metavar="BETA",
        help="dampening: eta exp(-BETA tau) (default %(default)s)",
    )
    g.add_argument(
        "--dc-lambda",
        type=float,
        default=0.04,
        metavar="L",
        help="DC-ASGD lambda (lambda_0 with --dc-adaptive) (default %(default)s)",
    )
    g.add_argument(
        "--dc-adaptive",
        action="store_true",
        help="DC-ASGD-a: lambda / sqrt(mean square of the pushes)",
    )
    g.add_argument(
        "--ssp-bound",
        type=int,
        default=None,
        metavar="S",
        help="bounded staleness: a worker more than S pushes ahead of the slowest waits "
        "(with --policy ssp, or added to any policy)",
    )


def _add_speed_and_clock(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--slowdown",
        default=None,
        metavar="F,F,...",
        help="per-worker slow-down factors >= 1, one per worker, e.g. 1,1,2,4",
    )
    g.add_argument(
        "--delay",
        default=None,
        metavar="DIST",
        help=f"async: random sleep per step: {describe_kinds(TIME_DISTRIBUTIONS)}",
    )
    g.add_argument(
        "--sparse-downlink",
        action="store_true",
        help="pulls send only the entries changed since the worker's last copy",
    )
    g.add_argument(
        "--staleness",
        default=None,
        metavar="DIST",
        help=f"sim: one worker, tau drawn per update: {describe_kinds(STALENESS_DISTRIBUTIONS)}",
    )
    g.add_argument(
        "--worker-time",
        default="constant:0.1",
        metavar="DIST",
        help="sim: seconds per gradient of each simulated worker (same syntax as --delay) "
        "(default %(default)s)",
    )
    g.add_argument(
        "--network",
        default="1gbe",
        metavar="NAME|A,B",
        help=f"sim clock: {', '.join(NETWORK_PRESETS)} or ALPHA,BETA (s per message, "
        "s per byte) (default %(default)s)",
    )
    g.add_argument(
        "--eval-every",
        type=int,
        default=0,
        metavar="N",
        help="test-set evaluation every N updates (default 0: ten per run)",
    )


def _refuse_sync_only(args: argparse.Namespace) -> None:
    used = [name for name, off in SYNC_ONLY.items() if getattr(args, name, off) != off]
    if getattr(args, "device", "cpu") != "cpu":
        used.append("device")  # the parameter server runs on gloo, on the CPU
    if used:
        names = ", ".join("--" + n.replace("_", "-") for n in used)
        raise ValueError(f"{names} apply to --mode sync only; got them with --mode {args.mode}")


def _problem(args: argparse.Namespace) -> Problem:
    return Problem(args.model, args.dataset, args.data_dir, args.seed, (), args.hidden_size)


def _compressor(args: argparse.Namespace) -> tuple[str, tuple[tuple[str, Any], ...]]:
    name = args.compressor or ("dense" if args.method == "dense" else "topk")
    settings = (("threshold", args.threshold),) if args.threshold is not None else ()
    return name, settings


def _steps(args: argparse.Namespace, problem: Problem) -> int:
    if args.steps is not None:
        return int(args.steps)
    if not math.isfinite(args.epochs) or args.epochs <= 0:
        raise ValueError(f"epochs must be a finite number > 0; got {args.epochs}")
    return max(1, math.ceil(args.epochs * problem.load().num_train / args.batch_size))


def _config(args: argparse.Namespace, problem: Problem) -> AsyncConfig:
    compressor, settings = _compressor(args)
    slowdown = None if args.slowdown is None else tuple(args.slowdown.split(","))
    return AsyncConfig(
        mode=args.mode,
        workers=args.workers,
        steps=_steps(args, problem),
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        compressor=compressor,
        compressor_settings=settings,
        density=args.density,
        memory=args.memory,
        memory_settings=(("momentum", args.momentum),) if args.memory == "dgc" else (),
        policy=args.policy,
        server_momentum=args.server_momentum,
        damping_beta=args.damping_beta,
        dc_lambda=args.dc_lambda,
        dc_adaptive=args.dc_adaptive,
        ssp_bound=args.ssp_bound,
        slowdown=slowdown,
        delay=args.delay,
        worker_time=args.worker_time,
        staleness=args.staleness,
        network=args.network,
        sparse_downlink=args.sparse_downlink,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        eval_every=args.eval_every,
        timeout_s=args.timeout_s,
    )


def _resumed(args: argparse.Namespace) -> tuple[AsyncConfig, Problem]:
    """The config of the run in ``--resume DIR``; ``--steps`` may extend it."""
    with RunDir(args.resume, resume=True) as run_dir:
        record = run_dir.read_config()
    if record.get("mode") != args.mode:
        raise ValueError(
            f"{args.resume} holds a --mode {record.get('mode')} run; got --mode {args.mode}"
        )
    cfg = AsyncConfig.from_record(record)
    if args.steps is not None:
        cfg = AsyncConfig.from_record({**cfg.to_record(), "steps": int(args.steps)})
    return cfg, Problem.from_record(record["problem"])


def _default_out(mode: str) -> str:
    base = Path("runs") / f"{mode}-{datetime.now():%Y%m%d-%H%M%S}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return str(out)


LIST_AT_MOST = 8  # more workers than this are summarised as min / mean / max


def _megabytes(values: list[int]) -> str:
    if len(values) <= LIST_AT_MOST:
        return ", ".join(f"{b / 1e6:.3f} MB" for b in values)
    mean = sum(values) / len(values)
    return (
        f"min {min(values) / 1e6:.3f} MB, mean {mean / 1e6:.3f} MB, "
        f"max {max(values) / 1e6:.3f} MB over {len(values)} workers"
    )


def _print_summary(s: dict[str, Any], cfg: AsyncConfig, out: str) -> None:
    acc = s["final_test_accuracy"]
    shown = "n/a" if acc is None else f"{acc:.2%}"
    clock = f", {s['sim_seconds']:.2f} s simulated" if "sim_seconds" in s else ""
    print(
        f"done: test accuracy {shown} after {s['steps']} updates ({cfg.mode}, "
        f"{s['workers']} worker{'' if s['workers'] == 1 else 's'}, policy {cfg.policy}){clock}"
    )
    st = s["staleness"]
    print(f"staleness: mean {st['mean']:.2f}, max {st['max']} over {st['count']} pushes")
    up, dense = s["bytes_uplink_per_worker"], s["dense_bytes_per_rank"]
    share = sum(up) / max(1, sum(dense))
    print(f"uplink bytes per worker: {_megabytes(up)} ({share:.2%} of dense)")
    down, dense_down = s["bytes_downlink_per_worker"], s["dense_downlink_bytes_per_worker"]
    share = sum(down) / max(1, sum(dense_down))
    print(f"downlink bytes per worker: {_megabytes(down)} ({share:.2%} of dense)")
    for death in s["dead_workers"]:
        print(
            f"worker {death['worker']} lost at update {death['step']} ({death['reason']}); "
            f"its residual held norm {death['residual_norm']:.4g}"
        )
    print(f"run folder: {out} (config.json, log.jsonl, summary.json, checkpoints/)")
    print("\n".join(closing_lines(s)))


def run(args: argparse.Namespace) -> int:
    """Run ``--mode async`` or ``--mode sim`` from the parsed options; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("sparsgd").setLevel(logging.INFO)
    try:
        _refuse_sync_only(args)
        if args.resume is not None:
            cfg, problem = _resumed(args)
            out = args.resume
        else:
            problem = _problem(args)
            cfg = _config(args, problem)
            out = args.out or _default_out(args.mode)
        if cfg.mode == "sim":
            if "OMP_NUM_THREADS" not in os.environ:
                # many small tensor operations: one intra-op thread is several times faster
                # than a pool fighting other processes for the cores (measured: docs/async.md)
                torch.set_num_threads(1)
            summary = run_simulation(cfg, problem, out, args.resume is not None, args.overwrite)
        else:
            summary = run_async(cfg, problem, out, args.resume is not None, args.overwrite)
    except AsyncRunFailed as err:
        print(
            f"sparsgd train: the parameter server failed, the run stopped.\n{err}", file=sys.stderr
        )
        return 1
    except (ValueError, TypeError, RunDirError, RuntimeError, OSError) as err:
        print(f"sparsgd train: error: {err}", file=sys.stderr)
        return 2
    _print_summary(summary, cfg, out)
    return 0
