"""The parameter-server process (rank 0): frames in, the server core, frames out.

    inbox = one receiving thread per worker (comm.ps_transport.ServerInbox)
    until every worker is retired:
        item = inbox.next()                       # (1) arrival order, across all workers
        replies = core.pull / push / flush / lose / drop (item)     # (2) server_core
        send every reply; a worker that cannot be reached is lost   # (3)
    core.finish(): final evaluation, summary.json                   # (4)

A worker killed mid-run closes its connection: its thread reports it lost and the others go
on. A header that breaks a worker's stream is refused (counted as malformed) and that worker
is stopped. If no worker says anything for ``cfg.timeout_s`` seconds, the server fails
instead of waiting forever; if workers talk but the version does not move for that long, or
``cfg.stall_pushes`` pushes in a row are refused as non-finite or too large, the server halts
the run (every later pull gets STOP) and records why (:meth:`ServerCore.halt`).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist

from sparsgd.asynchronous.build import build_server_state
from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.run_record import AsyncRecorder
from sparsgd.asynchronous.server_core import Replies, ServerCore
from sparsgd.comm.ps_transport import Inbound, PSEndpoint, ServerInbox
from sparsgd.runs import RunDir
from sparsgd.worker.flat_model import checksum
from sparsgd.worker.problem import Problem

__all__ = ["START_VERSION_KEY", "serve"]

logger = logging.getLogger(__name__)
START_VERSION_KEY = "sparsgd/async/start_version"  # the store key workers read on start
THREAD_JOIN_S = 5.0


def _open(
    cfg: AsyncConfig, problem: Problem, out: str | Path, resume: bool, overwrite: bool
) -> tuple[ServerCore, float]:
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
    if resume:
        latest, checkpoint = run_dir.load_latest_checkpoint()  # falls back past damaged files
        core.load_state_dict(checkpoint, workers_restart=True)
        run_dir.truncate_log(core.state.version)
        logger.info("resuming at step %d from %s", core.state.version, latest)
        _record_dropped(core, checkpoint, latest)
    run_dir.write_config({"mode": "async", **cfg.to_record(), "problem": problem.to_record()})
    return core, started


def _record_dropped(core: ServerCore, checkpoint: dict[str, Any], latest: Path) -> None:
    """Record what a real resume cannot restore: the workers are new, empty processes.

    A worker retired at the checkpoint (it flushed at STOP) took nothing with it; any other
    held a residual e whose norm it last reported with a push: that mass is lost, and so are
    its batch and compressor generators (new workers draw batches keyed by the start version).
    """
    retired = {int(w) for w in checkpoint["retired"]}
    norms = [
        0.0 if w in retired else float(core.recorder.residual_norm[w])
        for w in range(core.cfg.workers)
    ]
    core.recorder.resumed(
        {
            "step": core.state.version,
            "checkpoint": latest.name,
            "dropped_residual_norm": norms,
            "dropped": "worker residuals (last reported norms) and worker generators; new "
            "workers start with e = 0 and batches keyed by the start version",
        }
    )
    if any(norms):
        logger.warning(
            "resume drops the residuals the workers held at update %d (norms %s)",
            core.state.version,
            ", ".join(f"{n:.3g}" for n in norms),
        )


def _dispatch(core: ServerCore, item: Inbound, reported: dict[int, list[float]]) -> Replies:
    """(2) Hand one inbound item to the core."""
    w, frame = item.worker, item.frame
    if frame is None:
        problem = item.problem or "lost"
        if problem.startswith("malformed"):
            return core.drop(w, problem)
        return core.lose(w, problem)
    if frame.kind == "PULL":
        if all(math.isfinite(v) and v >= 0 for v in frame.meta):  # NaN: no cycle yet
            core.recorder.cycled(*frame.meta)  # the worker's last (compute_s, comm_s)
        return core.pull(w)
    if frame.kind == "PUSH":
        residual_norm, loss = frame.meta
        return core.push(w, frame.msg, frame.version, loss, residual_norm, frame.nbytes)
    if frame.kind == "FLUSH":
        # (pushes sent, gradients skipped as non-finite): counts, or None when not a count
        reported[w] = [v if math.isfinite(v) and v >= 0 else None for v in frame.meta]
        return core.flush(w, frame.msg, frame.version, frame.nbytes)
    return core.drop(w, f"a worker may not send {frame.kind}")


def _send_all(core: ServerCore, endpoint: PSEndpoint, replies: Replies) -> None:
    """(3) Send the replies; a worker that cannot be reached is lost (and may release more)."""
    queue = list(replies)
    while queue:
        w, reply = queue.pop(0)
        meta = (checksum(core.state.x), 0.0) if reply.kind == "MODEL" else (0.0, 0.0)
        try:
            endpoint.send(w + 1, reply.kind, reply.version, reply.msg, meta)
        except RuntimeError as err:
            queue.extend(core.lose(w, f"lost: {str(err).splitlines()[0]}"))


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
    that restarted workers draw fresh batches.
    """
    core, started = _open(cfg, problem, out, resume, overwrite)
    store.set(START_VERSION_KEY, str(core.state.version))
    endpoint = PSEndpoint(core.state.numel)
    inbox = ServerInbox(endpoint, cfg.workers)
    inbox.start()
    reported: dict[int, list[float]] = {}
    while not core.done:
        waited = time.perf_counter()
        item = inbox.next(cfg.timeout_s)  # (1)
        core.recorder.timed("wait", time.perf_counter() - waited)
        _send_all(core, endpoint, _dispatch(core, item, reported))
        _send_all(core, endpoint, core.watch())  # no new version for timeout_s: halt
    stuck = inbox.join(THREAD_JOIN_S)
    if stuck:
        logger.warning("receiving threads of workers %s did not end", stuck)
    core.checkpoint()  # always at the end: --resume can go on from here
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
