"""The parameter-server process (rank 0): frames in, the server core, frames out.

    inbox = one receiving thread per worker (comm.ps_transport.ServerInbox)
    until every worker is retired:
        item = inbox.next()                       # (1) arrival order, across all workers
        replies = core.pull / push / flush / lose / drop (item)     # (2) server_core
                  or a worker's STATE for a checkpoint              #     checkpoint_gather
        send every reply; a worker that cannot be reached is lost   # (3)
        a checkpoint due: ask the workers for their states          # (3')
    checkpoint (every worker retired: no state to hold)
    core.finish(): final evaluation, summary.json                   # (4)

A worker killed mid-run closes its connection: its thread reports it lost and the others go
on. A header that breaks a worker's stream is refused (counted as malformed) and that worker
is stopped. If no worker says anything for ``cfg.timeout_s`` seconds, the server fails
instead of waiting forever; if workers talk but the version does not move for that long, or
``cfg.stall_pushes`` pushes in a row are refused as non-finite or too large, the server halts
the run (every later pull gets STOP) and records why (:meth:`ServerCore.halt`).

Checkpoints hold the workers' states with x, all of one version
(:mod:`~sparsgd.asynchronous.checkpoint_gather`); ``--resume`` hands each new worker process
its state back at its first pull, and records what an older checkpoint could not give back.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist

from sparsgd.asynchronous.build import build_server_state
from sparsgd.asynchronous.checkpoint_gather import StateReply, WorkerCheckpoints, resume_states
from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.run_record import AsyncRecorder
from sparsgd.asynchronous.server_core import Reply, ServerCore
from sparsgd.comm.ps_transport import Inbound, PSEndpoint, ServerInbox
from sparsgd.runs import RunDir
from sparsgd.worker.flat_model import checksum
from sparsgd.worker.problem import Problem

__all__ = ["START_VERSION_KEY", "serve"]

logger = logging.getLogger(__name__)
START_VERSION_KEY = "sparsgd/async/start_version"  # the store key workers read on start
THREAD_JOIN_S = 5.0
Outgoing = list[tuple[int, Reply | StateReply]]


def _open(
    cfg: AsyncConfig, problem: Problem, out: str | Path, resume: bool, overwrite: bool
) -> tuple[WorkerCheckpoints, float]:
    bundle = problem.load()
    model = problem.build_model(bundle)
    test_inputs, test_targets = problem.test_data(bundle)
    run_dir = RunDir(out, resume=resume, overwrite=overwrite)
    started = time.perf_counter()
    core = ServerCore(
        cfg,
        build_server_state(cfg, model.flat()),
        AsyncRecorder(run_dir, cfg.workers, model.numel, cfg.log_every, cfg.tensorboard),
        evaluate=lambda x: model.evaluate(x, test_inputs, test_targets),
        now=lambda: time.perf_counter() - started,
        num_train=bundle.num_train,
        run_dir=run_dir,
        num_classes=bundle.num_classes,
    )
    restore = None
    if resume:
        latest, checkpoint = run_dir.load_latest_checkpoint()  # falls back past damaged files
        core.load_state_dict(checkpoint, workers_restart=True)
        run_dir.truncate_log(core.state.version)
        logger.info("resuming at step %d from %s", core.state.version, latest)
        restore = resume_states(core, checkpoint, latest)
    run_dir.write_config({"mode": "async", **cfg.to_record(), "problem": problem.to_record()})
    return WorkerCheckpoints(core, restore), started


def _dispatch(
    gather: WorkerCheckpoints, item: Inbound, reported: dict[int, list[float]]
) -> Outgoing:
    """(2) Hand one inbound item to the core (through the checkpoints' gathering)."""
    w, frame, core = item.worker, item.frame, gather.core
    if frame is None:
        problem = item.problem or "lost"
        if problem.startswith("malformed"):
            return gather.drop(w, problem)
        return gather.lose(w, problem)
    if frame.kind == "PULL":
        if all(math.isfinite(v) and v >= 0 for v in frame.meta):  # NaN: no cycle yet
            core.recorder.cycled(*frame.meta)  # the worker's last (compute_s, comm_s)
        return gather.pull(w)
    if frame.kind == "PUSH":
        residual_norm, loss = frame.meta
        return core.push(w, frame.msg, frame.version, loss, residual_norm, frame.nbytes)
    if frame.kind == "FLUSH":
        # (pushes sent, gradients skipped as non-finite): counts, or None when not a count
        reported[w] = [v if math.isfinite(v) and v >= 0 else None for v in frame.meta]
        return gather.flush(w, frame.msg, frame.version, frame.nbytes)
    if frame.kind == "STATE":
        return gather.state(w, frame.state, frame.nbytes)
    return gather.drop(w, f"a worker may not send {frame.kind}")


def _send_all(gather: WorkerCheckpoints, endpoint: PSEndpoint, replies: Outgoing) -> None:
    """(3) Send the replies; a worker that cannot be reached is lost (and may release more)."""
    queue, x = list(replies), gather.core.state.x
    while queue:
        w, reply = queue.pop(0)
        meta = (checksum(x), 0.0) if reply.kind == "MODEL" else (0.0, 0.0)
        state = reply.state if isinstance(reply, StateReply) else None
        try:
            endpoint.send(w + 1, reply.kind, reply.version, reply.msg, meta, state)
        except RuntimeError as err:
            queue.extend(gather.lose(w, f"lost: {str(err).splitlines()[0]}"))


def _count(value: float | None) -> int | None:
    return None if value is None else int(value)


def serve(
    cfg: AsyncConfig,
    problem: Problem,
    out: str | Path,
    resume: bool,
    store: Any,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the server until every worker is retired; returns the summary (also written).

    ``store``: the group's store; the server publishes the version it starts at there, so
    that restarted workers that get no saved state back draw fresh batches.
    """
    gather, started = _open(cfg, problem, out, resume, overwrite)
    core = gather.core
    store.set(START_VERSION_KEY, str(core.state.version))
    endpoint = PSEndpoint(core.state.numel)
    inbox = ServerInbox(endpoint, cfg.workers)
    inbox.start()
    reported: dict[int, list[float]] = {}
    while not core.done:
        waited = time.perf_counter()
        item = inbox.next(cfg.timeout_s)  # (1)
        core.recorder.timed("wait", time.perf_counter() - waited)
        before = core.state.version
        _send_all(gather, endpoint, _dispatch(gather, item, reported))
        _send_all(gather, endpoint, core.watch())  # no new version for timeout_s: halt
        _send_all(gather, endpoint, gather.tick(before))  # (3')
    stuck = inbox.join(THREAD_JOIN_S)
    if stuck:
        logger.warning("receiving threads of workers %s did not end", stuck)
    gather.save({})  # always at the end (every worker retired): --resume can go on from here
    summary = core.finish(  # (4)
        time.perf_counter() - started,
        mode="async",
        workers=cfg.workers,
        backend=dist.get_backend(),
        pushes_sent_reported_per_worker=[
            _count(reported.get(w, [None])[0]) for w in range(cfg.workers)
        ],
        skipped_nonfinite=sum(_count(v[1]) or 0 for v in reported.values()),
    )
    if core.run_dir is not None:
        core.run_dir.close()
    return summary
