"""The real server's decisions (ServerCore with its checkpoint gathering) and real gradient
workers in one process, in an order the test writes: what the server process and the worker
processes do, without the transport and without the operating system choosing the order.

    fleet = Fleet.start(cfg, folder)             # or Fleet.resume(cfg, folder)
    fleet.pull(0); fleet.pull(1)                 # each worker's first PULL
    fleet.cycle(0)                               # worker 0: PUSH what it computed, then PULL

A worker answers what the server replies as ``asynchronous.worker.run_worker`` does: MODEL ->
write it over its copy as the wire delivers it (:func:`received`), check the copy against the
server's x, compute its push at once (sent by the next ``cycle``); SAVE -> STATE (through the
wire codec); STATE -> restore; STOP -> FLUSH. The server side runs ``tick`` after every
frame, as ``asynchronous.server.serve`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sparsgd.asynchronous.build import build_gradient_worker, build_server_state
from sparsgd.asynchronous.checkpoint_gather import WorkerCheckpoints, resume_states
from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.gradient_worker import GradientWorker, Push
from sparsgd.asynchronous.run_record import AsyncRecorder
from sparsgd.asynchronous.server_core import ServerCore
from sparsgd.asynchronous.speed import Pace
from sparsgd.asynchronous.worker_state import restore_worker, worker_state
from sparsgd.comm.ps_transport import DENSE, _header, wire_bytes
from sparsgd.comm.state_codec import decode, encode
from sparsgd.compress.message import SparseMessage
from sparsgd.runs import RunDir
from sparsgd.worker.problem import Problem
from sparsgd.worker.seeds import generator_for

PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 192),))


def received(msg: SparseMessage) -> SparseMessage:
    """What a worker's endpoint makes of a MODEL frame carrying ``msg`` (PSEndpoint.recv): one
    encoded DENSE is read as every entry, with the zeros ``to_dense`` put where ``msg`` has none."""
    if int(_header("MODEL", 0, msg, (0.0, 0.0))[4]) != DENSE:
        return msg
    return SparseMessage(torch.arange(msg.numel), msg.to_dense(), msg.numel)


@dataclass
class Fleet:
    gather: WorkerCheckpoints
    workers: list[GradientWorker]
    paces: list[Pace]
    version: list[int]  # the version of each worker's last MODEL
    pushes: list[int]  # pushes each worker sent
    computed: dict[int, Push | None] = field(default_factory=dict)
    copies: dict[int, torch.Tensor] = field(default_factory=dict)  # each worker's model copy
    models: list[tuple[int, int, int]] = field(default_factory=list)  # (worker, version, nnz)
    seen: list[tuple[int, str]] = field(default_factory=list)  # (worker, reply kind)
    stopped: set[int] = field(default_factory=set)

    @property
    def core(self) -> ServerCore:
        return self.gather.core

    @classmethod
    def start(cls, cfg: AsyncConfig, folder: Path | None) -> Fleet:
        run_dir = None if folder is None else RunDir(folder)
        if run_dir is not None:
            config = {"mode": "async", **cfg.to_record(), "problem": PROBLEM.to_record()}
            run_dir.write_config(config)
        core, workers, paces = _build(cfg, run_dir, restart=0)
        return cls(WorkerCheckpoints(core), workers, paces, [0] * cfg.workers, [0] * cfg.workers)

    @classmethod
    def resume(cls, cfg: AsyncConfig, folder: Path) -> Fleet:
        """A new server and new workers from the folder's latest checkpoint (server.py's
        ``_open``); the workers get their states back at their first pull."""
        run_dir = RunDir(folder, resume=True)
        latest, checkpoint = run_dir.load_latest_checkpoint()
        core, workers, paces = _build(cfg, run_dir, restart=int(checkpoint["server"]["version"]))
        core.load_state_dict(checkpoint, workers_restart=True)
        run_dir.truncate_log(core.state.version)
        restore = resume_states(core, checkpoint, latest)
        n = cfg.workers
        return cls(WorkerCheckpoints(core, restore), workers, paces, [0] * n, [0] * n)

    # -- frames from the workers, each followed by the server's tick ----------------------
    def _frame(self, replies: list[tuple[int, Any]], before: int) -> None:
        self._deliver([*replies, *self.gather.tick(before)])

    def pull(self, w: int) -> None:
        before = self.core.state.version
        self._frame(self.gather.pull(w), before)

    def push(self, w: int) -> None:
        """Send what worker ``w`` computed (nothing if its gradient was not finite)."""
        push = self.computed.pop(w)
        if push is None:
            return
        before = self.core.state.version
        nbytes = wire_bytes(push.msg.nnz, push.msg.numel)
        replies = self.core.push(
            w, push.msg, self.version[w], push.loss, push.residual_norm, nbytes
        )
        self.pushes[w] += 1
        self._frame(replies, before)

    def cycle(self, w: int) -> None:
        """PUSH, then PULL; nothing while ``w`` waits for the answer to its last PULL (SSP
        holds it, or it is parked for a checkpoint): a waiting worker cannot act."""
        if w in self.computed:
            self.push(w)
            self.pull(w)

    def send_state(self, w: int, state: dict[str, Any]) -> None:
        frame = encode(state)
        before = self.core.state.version
        self._frame(self.gather.state(w, decode(frame), frame.numel()), before)

    # -- what a worker does with a reply ------------------------------------------------
    def _deliver(self, replies: list[tuple[int, Any]]) -> None:
        for w, reply in replies:
            self.seen.append((w, reply.kind))
            if reply.kind == "STATE":
                state = decode(encode(reply.state))
                self.pushes[w], self.version[w] = restore_worker(
                    self.workers[w], self.paces[w], state
                )
            elif reply.kind == "SAVE":
                self.send_state(w, self.state_of(w))
            elif reply.kind == "MODEL":
                self.version[w] = reply.version
                self.models.append((w, reply.version, reply.msg.nnz))
                msg = received(reply.msg)
                copy = self.copies.setdefault(w, torch.zeros(msg.numel))
                copy[msg.indices.long()] = msg.values
                if not torch.equal(copy, self.core.state.x):
                    raise AssertionError(f"worker {w}'s copy differs at version {reply.version}")
                self.computed[w] = self.workers[w].step(copy)
            elif reply.kind == "STOP":
                self.stopped.add(w)
                msg = self.workers[w].flush()
                before = self.core.state.version
                nbytes = wire_bytes(msg.nnz, msg.numel)
                self._frame(self.gather.flush(w, msg, self.version[w], nbytes), before)

    def state_of(self, w: int) -> dict[str, Any]:
        return worker_state(self.workers[w], self.paces[w], self.pushes[w], self.version[w])


def _build(
    cfg: AsyncConfig, run_dir: RunDir | None, restart: int
) -> tuple[ServerCore, list[GradientWorker], list[Pace]]:
    bundle = PROBLEM.load()
    model = PROBLEM.build_model(bundle)
    test_inputs, test_targets = PROBLEM.test_data(bundle)
    core = ServerCore(
        cfg,
        build_server_state(cfg, model.flat()),
        AsyncRecorder(run_dir, cfg.workers, model.numel, cfg.log_every),
        evaluate=lambda x: model.evaluate(x, test_inputs, test_targets),
        now=lambda: 0.0,
        num_train=bundle.num_train,
        run_dir=run_dir,
    )
    workers = [
        build_gradient_worker(
            cfg, w, model, *PROBLEM.worker_data(bundle, w, cfg.workers), restart=restart
        )
        for w in range(cfg.workers)
    ]
    paces = [
        Pace(1.0, None, generator_for(cfg.seed, "worker", w, "delay")) for w in range(cfg.workers)
    ]
    return core, workers, paces
