"""A worker process of the real parameter server (rank w + 1 of the process group).

    loop:
        send PULL (the last cycle's seconds); receive MODEL (x_t, version t) or STOP  # (1)
            before it: STATE (a resumed run: load the state saved at the checkpoint)   # (0)
                    or SAVE (a checkpoint: send STATE, this worker's state, and wait)  # (7)
        x <- the dense x_t, or x with the changed entries written    # (2) sparse downlink
        check sum(x) against the server's (float64, bit for bit)
        push = step(x): gradient on the own shard, memory, compressor   # (3)
        sleep (s_w - 1) * compute time + delay draw                 # (4) injected slowness
        send PUSH (c, t, ||e||, loss)                               # (5)
    on STOP: send FLUSH (the whole residual, t; pushes sent), wait for DONE   # (6)

A cycle's seconds go to the server with the next PULL, for the time split of its records
(asynchronous.run_record): compute = (3) + (4), comm = (1) + (2) + (5).

A worker that stops normally therefore leaves nothing in its residual. One killed mid-run
takes its residual with it; the server knows its size from the last push's ``||e||``. The
state of (0) and (7) (residual, generators, counters: :mod:`~sparsgd.asynchronous.worker_state`)
is taken between a push and the next model, so a resumed worker goes on exactly where it was.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from sparsgd.asynchronous.build import build_gradient_worker
from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.speed import Pace, make_time_distribution
from sparsgd.asynchronous.worker_state import restore_worker, worker_state
from sparsgd.comm.ps_transport import Frame, PSEndpoint
from sparsgd.worker.flat_model import checksum
from sparsgd.worker.problem import Problem
from sparsgd.worker.seeds import generator_for

__all__ = ["ProtocolError", "WorkerReport", "run_worker"]

logger = logging.getLogger(__name__)
SERVER_RANK = 0


class ProtocolError(RuntimeError):
    """The server answered with something the protocol does not allow here."""


@dataclass(frozen=True)
class WorkerReport:
    worker: int
    pushes_sent: int
    skipped_nonfinite: int
    bytes_sent: int
    slept_seconds: float


def _apply_model(x: Tensor | None, frame: Frame) -> Tensor:
    """(2) The worker's copy after a MODEL frame (the first one is always dense)."""
    msg = frame.msg
    if msg is None:
        raise ProtocolError("a MODEL frame without payload")
    if x is None:
        if msg.nnz != msg.numel:
            raise ProtocolError("the first MODEL frame must carry the whole model")
        x = torch.empty(msg.numel, dtype=torch.float32)
    x[msg.indices.long()] = msg.values.to(torch.float32)
    if checksum(x) != frame.meta[0]:
        raise ProtocolError(f"model copy differs from the server's at version {frame.version}")
    return x


def run_worker(cfg: AsyncConfig, problem: Problem, worker: int, restart: int = 0) -> WorkerReport:
    """Steps (1)-(6) until the server says STOP; the process group must be joined."""
    bundle = problem.load()
    model = problem.build_model(bundle)
    inputs, targets = problem.worker_data(bundle, worker, cfg.workers)
    gw = build_gradient_worker(cfg, worker, model, inputs, targets, restart)
    delay = None if cfg.delay is None else make_time_distribution(cfg.delay)
    pace = Pace(cfg.slowdowns[worker], delay, generator_for(cfg.seed, "worker", worker, "delay"))
    endpoint = PSEndpoint(model.numel)
    x: Tensor | None = None
    version, pushes = 0, 0
    cycle = (math.nan, math.nan)  # (compute_s, comm_s) of the last cycle; NaN: none yet
    while True:
        pulled = time.perf_counter()
        endpoint.send(SERVER_RANK, "PULL", meta=cycle)  # (1)
        frame = endpoint.recv(SERVER_RANK)
        while frame.kind in ("STATE", "SAVE"):
            if frame.kind == "STATE":  # (0)
                pushes, version = restore_worker(gw, pace, frame.state)
            else:  # (7)
                state = worker_state(gw, pace, pushes, version)
                endpoint.send(SERVER_RANK, "STATE", version, state=state)
            frame = endpoint.recv(SERVER_RANK)
        if frame.kind == "STOP":
            break
        if frame.kind != "MODEL":
            raise ProtocolError(f"expected MODEL or STOP; got {frame.kind}")
        x, version = _apply_model(x, frame), frame.version  # (2)
        started = time.perf_counter()
        push = gw.step(x)  # (3)
        pace.wait(time.perf_counter() - started)  # (4)
        computed = time.perf_counter()
        if push is not None:
            endpoint.send(SERVER_RANK, "PUSH", version, push.msg, (push.residual_norm, push.loss))
            pushes += 1  # (5)
        cycle = (computed - started, started - pulled + time.perf_counter() - computed)
    meta = (float(pushes), float(gw.skipped_nonfinite))
    endpoint.send(SERVER_RANK, "FLUSH", version, gw.flush(), meta)  # (6)
    done = endpoint.recv(SERVER_RANK)
    if done.kind != "DONE":
        raise ProtocolError(f"expected DONE after FLUSH; got {done.kind}")
    logger.debug("worker %d done after %d pushes", worker, pushes)
    return WorkerReport(worker, pushes, gw.skipped_nonfinite, endpoint.bytes_sent, pace.slept)
