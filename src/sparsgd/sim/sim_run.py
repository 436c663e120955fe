"""``--mode sim``: one process, the real server core, simulated workers or drawn staleness.

    run_simulation(cfg, problem, out)        # a fresh run in the folder ``out``
    run_simulation(cfg, problem, out, True)  # go on from out's last checkpoint, exactly

``cfg.staleness`` set: one worker, tau drawn per update (:mod:`sparsgd.sim.drawn_sim`);
otherwise ``cfg.workers`` simulated workers with ``cfg.worker_time`` compute times
(:mod:`sparsgd.sim.worker_sim`). Both apply every push through
:class:`~sparsgd.asynchronous.server_core.ServerCore`, the code the real server runs, and
report simulated seconds (the alpha-beta clock of ``cfg.network``) next to wall seconds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sparsgd.asynchronous.build import build_gradient_worker, build_server_state
from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.gradient_worker import GradientWorker
from sparsgd.asynchronous.run_record import AsyncRecorder
from sparsgd.asynchronous.server_core import ServerCore
from sparsgd.asynchronous.speed import make_time_distribution
from sparsgd.compress.memory import ResidualMemory, SharedBuffer
from sparsgd.compress.spill import ResidualFile, SpilledResidualMemory, check_residual_dir
from sparsgd.data import DatasetBundle
from sparsgd.runs import RunDir, RunDirError, RunLock, complete_summary, completed
from sparsgd.sim.drawn_sim import DrawnStalenessSimulation
from sparsgd.sim.network_clock import parse_network
from sparsgd.sim.staleness import make_staleness
from sparsgd.sim.worker_sim import WorkerSimulation
from sparsgd.worker.problem import Problem

__all__ = ["Simulation", "build_simulation", "run_simulation"]

logger = logging.getLogger(__name__)

Simulation = DrawnStalenessSimulation | WorkerSimulation


def _parse_specs(cfg: AsyncConfig) -> None:
    parse_network(cfg.network)
    make_time_distribution(cfg.worker_time)
    if cfg.staleness is not None:
        make_staleness(cfg.staleness)
    if cfg.residual_dir is not None:
        check_residual_dir(cfg.residual_dir)


def build_simulation(
    cfg: AsyncConfig,
    problem: Problem,
    run_dir: RunDir | None = None,
    bundle: DatasetBundle | None = None,
) -> tuple[ServerCore, Simulation]:
    """The core and the simulation of ``cfg``, ready to ``run()`` (specs parsed first).

    ``bundle``: ``problem``'s data when the caller has loaded it already.
    """
    network = parse_network(cfg.network)
    times = make_time_distribution(cfg.worker_time)
    staleness = None if cfg.staleness is None else make_staleness(cfg.staleness)
    if staleness is not None and cfg.workers != 1:
        logger.warning(
            "--staleness simulates one worker on all the data; ignoring --workers %d", cfg.workers
        )
        cfg = replace(cfg, workers=1, slowdown=None)
    bundle = problem.load() if bundle is None else bundle
    model = problem.build_model(bundle)
    shared = SharedBuffer()
    store = None
    if cfg.residual_dir is not None:
        store = ResidualFile(cfg.residual_dir, cfg.workers, model.numel)
    workers = [
        build_gradient_worker(
            cfg,
            w,
            model,
            *problem.worker_data(bundle, w, cfg.workers),
            dense_pushes=True,
            memory=None if store is None else SpilledResidualMemory(store, w, shared),
        )
        for w in range(cfg.workers)
    ]
    _share_work_buffers(workers, shared)
    test_inputs, test_targets = problem.test_data(bundle)
    recorder = AsyncRecorder(  # the simulated server takes no time: no apply / wait split
        run_dir, cfg.workers, model.numel, cfg.log_every, cfg.tensorboard, server_times=False
    )
    core = ServerCore(
        cfg,
        build_server_state(cfg, model.flat()),
        recorder,
        evaluate=lambda x: model.evaluate(x, test_inputs, test_targets),
        now=lambda: 0.0,
        num_train=bundle.num_train,
        run_dir=run_dir,
        num_classes=bundle.num_classes,
    )
    if staleness is not None:
        sim: Simulation = DrawnStalenessSimulation(core, workers[0], staleness, times, network)
    else:
        sim = WorkerSimulation(core, workers, times, cfg.slowdowns, network)
    core.now = lambda: sim.now
    return core, sim


def _share_work_buffers(workers: list[GradientWorker], shared: SharedBuffer) -> None:
    """Simulated workers step one at a time, so they share what lives only within a step.

    One compressor serves all when it keeps no state (an empty ``state_dict``: ``topk``,
    ``dense``, ``threshold``; its work buffers are then one set, not W), and the residual
    memories write p into one shared buffer (:class:`~sparsgd.compress.memory.SharedBuffer`):
    the residuals are the only dense state kept per worker, in memory or, with
    ``residual_dir``, in a file (:mod:`sparsgd.compress.spill`). The numbers do not change.
    """
    first = workers[0].compressor
    if not first.state_dict():
        for gw in workers[1:]:
            gw.compressor = first
    for gw in workers:
        if isinstance(gw.memory, ResidualMemory):
            gw.memory.share_buffer(shared)


def _resume(core: ServerCore, sim: Simulation, run_dir: RunDir) -> None:
    latest, checkpoint = run_dir.load_latest_checkpoint()  # falls back past damaged files
    if checkpoint.get("sim") is None:
        raise RunDirError(f"checkpoint {latest} was not written by the simulator")
    core.load_state_dict(checkpoint, workers_restart=False)
    sim.load_state_dict(checkpoint["sim"])
    run_dir.truncate_log(core.state.version)
    logger.info("resumed the simulation at step %d from %s", core.state.version, latest)


def run_simulation(
    cfg: AsyncConfig,
    problem: Problem,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the simulation of ``cfg``; returns the summary (also ``out/summary.json``)."""
    entered = time.perf_counter()  # total_seconds counts from here
    if cfg.mode != "sim":
        raise ValueError(f"run_simulation needs cfg.mode 'sim'; got {cfg.mode!r}")
    if resume and out is None:
        raise ValueError("resume needs the run folder (out); got None")
    _parse_specs(cfg)  # a bad spec, data set or model fails before the run folder is made
    bundle = problem.check(1 if cfg.staleness is not None else cfg.workers)
    lock = None if out is None else RunLock(out).acquire()  # one writer per run folder
    try:
        return _simulate(cfg, problem, out, resume, overwrite, bundle, entered)
    finally:
        if lock is not None:
            lock.release()


def _simulate(
    cfg: AsyncConfig,
    problem: Problem,
    out: str | Path | None,
    resume: bool,
    overwrite: bool,
    bundle: DatasetBundle,
    entered: float,
) -> dict[str, Any]:
    run_dir = None if out is None else RunDir(out, resume=resume, overwrite=overwrite)
    core, sim = build_simulation(cfg, problem, run_dir, bundle)
    if resume and run_dir is not None:
        _resume(core, sim, run_dir)
    if run_dir is not None:
        run_dir.write_config(
            {"mode": "sim", **core.cfg.to_record(), "problem": problem.to_record()}
        )
    started = time.perf_counter()
    sim.run()
    core.checkpoint(sim.state_dict())  # always at the end: --resume can go on from here
    summary = core.finish(
        time.perf_counter() - started,
        mode="sim",
        workers=core.cfg.workers,
        sim_seconds=sim.now,
        network={"name": sim.up.model.name, "alpha": sim.up.model.alpha, "beta": sim.up.model.beta},
        staleness_source=cfg.staleness or f"workers, compute time {cfg.worker_time}",
        skipped_nonfinite=sum(gw.skipped_nonfinite for gw in _workers(sim)),
    )
    if run_dir is None:
        return completed(summary, entered)
    run_dir.close()
    return complete_summary(out, entered)


def _workers(sim: Simulation) -> list[Any]:
    return [sim.worker] if isinstance(sim, DrawnStalenessSimulation) else sim.workers
