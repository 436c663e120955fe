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

from sparsgd.asynchronous.config import MODES, AsyncConfig
from sparsgd.asynchronous.real_run import run_async
from sparsgd.asynchronous.spec import describe_kinds
from sparsgd.asynchronous.speed import TIME_DISTRIBUTIONS
from sparsgd.cli.options import add_options, flag_of, option_fields, option_values
from sparsgd.comm.launch import WorkerFailed
from sparsgd.runs import RunDir, RunDirError, closing_lines
from sparsgd.runs.tensorboard import require_tensorboard
from sparsgd.sim.network_clock import NETWORK_PRESETS
from sparsgd.sim.sim_run import run_simulation
from sparsgd.sim.staleness import STALENESS_DISTRIBUTIONS
from sparsgd.sync.config import SyncConfig
from sparsgd.worker.problem import Problem

__all__ = ["add_arguments", "refuse_other_modes", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per AsyncConfig field of its own (the shared ones come from SyncConfig)."""
    notes = {  # valid values the simulator defines (asynchronous/config.py cannot import sim)
        "delay": describe_kinds(TIME_DISTRIBUTIONS),
        "staleness": describe_kinds(STALENESS_DISTRIBUTIONS),
        "network": "presets: " + ", ".join(NETWORK_PRESETS),
    }
    add_options(parser, AsyncConfig, notes=notes)


def _modes_of(f: Any) -> tuple[str, ...]:
    """The modes an option applies to: metadata ``modes``; ``sync_only``: sync; else all."""
    if "modes" in f.metadata:
        return tuple(f.metadata["modes"])
    return ("sync",) if f.metadata.get("sync_only") else ("sync", *MODES)


def refuse_other_modes(args: argparse.Namespace) -> None:
    """Every option given that does not apply to ``args.mode`` is refused, before anything starts.

    An option is given when its value differs from its field's default; the message names the
    options, the modes they belong to and the mode asked for.
    """
    by_modes: dict[tuple[str, ...], list[str]] = {}
    for cls in (SyncConfig, AsyncConfig):
        for f in option_fields(cls):
            given = getattr(args, f.name, f.default) != f.default
            if given and args.mode not in _modes_of(f):
                by_modes.setdefault(_modes_of(f), []).append(flag_of(f))
    if by_modes:
        modes, flags = next(iter(by_modes.items()))
        verb, them = ("applies", "it") if len(flags) == 1 else ("apply", "them")
        raise ValueError(
            f"{', '.join(flags)} {verb} to --mode {' | '.join(modes)} only; "
            f"got {them} with --mode {args.mode}"
        )


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
        **option_values(args, AsyncConfig),  # the fields of its own: policy ... eval_every
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        timeout_s=args.timeout_s,
        tensorboard=args.tensorboard,
    )


def _resumed(args: argparse.Namespace) -> tuple[AsyncConfig, Problem]:
    """The config of the run in ``--resume DIR``; ``--steps`` may extend it.

    Refused, naming the mode and the version the run stands at: another mode's folder, a
    folder without a checkpoint, a finished run that ``--steps`` does not extend.
    """
    with RunDir(args.resume, resume=True) as run_dir:
        record = run_dir.read_config()
        version = run_dir.latest_step()
    mode = record.get("mode", "sync")
    if mode != args.mode:
        raise ValueError(
            f"{args.resume} holds a --mode {mode} run; got --mode {args.mode} "
            f"(resume it with --mode {mode} --resume {args.resume})"
        )
    if version is None:
        raise RunDirError(f"cannot resume {args.resume} (--mode {mode}): it holds no checkpoint")
    cfg = AsyncConfig.from_record(record)
    if args.steps is not None:
        cfg = AsyncConfig.from_record({**cfg.to_record(), "steps": int(args.steps)})
    if cfg.steps <= version:
        raise RunDirError(
            f"the --mode {mode} run in {args.resume} already finished: its last checkpoint is "
            f"at version {version} (--steps {cfg.steps}); pass --steps N with N > {version} "
            "to continue it"
        )
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
    if s.get("halted"):
        print(f"the server ended the run at update {s['halted']['step']}: {s['halted']['reason']}")
    print(f"run folder: {out} (config.json, log.jsonl, summary.json, checkpoints/)")
    print("\n".join(closing_lines(s)))


def run(args: argparse.Namespace) -> int:
    """Run ``--mode async`` or ``--mode sim`` from the parsed options; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("sparsgd").setLevel(logging.INFO)
    try:
        refuse_other_modes(args)
        if args.tensorboard:
            require_tensorboard()  # before any process starts or folder is made
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
    except WorkerFailed as err:
        print(
            f"sparsgd train: the parameter server failed, the run stopped.\n{err}", file=sys.stderr
        )
        return 1
    except (ValueError, TypeError, RunDirError, RuntimeError, OSError) as err:
        print(f"sparsgd train: error: {err}", file=sys.stderr)
        return 2
    _print_summary(summary, cfg, out)
    return 0
