"""W simulated workers in an event queue around the real server core, on a simulated clock.

Staleness here is produced the way a cluster produces it (docs/algorithms.md, staleness
policies): worker w needs ``s_w * draw`` seconds per gradient (a worker-time distribution,
slow-down s_w), every message crosses the server's links at ``alpha + bytes * beta``
(:mod:`sparsgd.sim.network_clock`), and the server applies pushes in the order they arrive.
With W equal workers the mean staleness is about W - 1. Worker w's cycle:

    PULL   uplink, header only                     -> "pull" event: core.pull(w)     # (1)
    MODEL  downlink, x_t or its changes; gradient taken on x_t, compute time drawn   # (2)
    PUSH   when computed: uplink (c, t_w), then the next PULL right behind it        # (3)
           -> "push" event: core.push(w, ...) in arrival order                       # (4)
    STOP   (t >= steps): the worker flushes its residual -> "flush": core.flush     # (5)

Time split (asynchronous.run_record): a cycle's compute is its drawn time, its comm runs
from sending the pull to the MODEL's arrival, the push ahead of the pull on the uplink, the
server's SSP hold and both links' queues included.

The gradient is computed when the MODEL is sent (it depends only on x_t and the worker's own
state), and its push waits in ``pending`` until its arrival event. Events are popped by
(time, scheduling order), every draw comes from a per-worker generator: the same seed gives
the same run, bit for bit. Checkpoints are taken between events, so a resumed simulation
continues exactly as the uninterrupted one.

Memory is O(d + pushes in flight), not O(W d): every worker computes on the server's one
``x`` (no copy per worker), a computed push waits as its sparse message, and the residual is
the only dense state a worker keeps. A flush (the whole residual, about d entries) is built
only when it arrives: at STOP the link is charged for its nnz, and the residual itself stays
in the worker's memory until the "flush" event takes it, so W workers stopping together never
hold W dense messages at once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sparsgd.asynchronous.gradient_worker import GradientWorker, Push
from sparsgd.asynchronous.server_core import Replies, ServerCore
from sparsgd.asynchronous.speed import TimeDistribution
from sparsgd.comm.ps_transport import wire_bytes
from sparsgd.compress.message import SparseMessage
from sparsgd.sim.event_queue import EventQueue
from sparsgd.sim.network_clock import Link, NetworkModel
from sparsgd.worker.seeds import generator_for

__all__ = ["WorkerSimulation"]


class WorkerSimulation:
    """Steps (1)-(5) for ``len(workers)`` simulated workers."""

    def __init__(
        self,
        core: ServerCore,
        workers: list[GradientWorker],
        times: TimeDistribution,
        slowdowns: tuple[float, ...],
        network: NetworkModel,
    ) -> None:
        if len(slowdowns) != len(workers):
            raise ValueError(f"one slowdown per worker: {len(slowdowns)} != {len(workers)}")
        self.core, self.workers, self.times, self.slowdowns = core, workers, times, slowdowns
        self.core.auto_checkpoint = False  # checkpoints go between events (see run)
        self.queue = EventQueue()
        self.up, self.down = Link(network), Link(network)
        self.time_gens = [
            generator_for(core.cfg.seed, "worker", w, "time") for w in range(len(workers))
        ]
        self.pending: dict[int, tuple[Push | None, int]] = {}  # computed, not yet arrived
        # stopped, flush on its way: the message, or None while it is still the residual
        self.flushes: dict[int, tuple[SparseMessage | None, int]] = {}
        self.last_version = [0] * len(workers)
        self.pull_ready = [0.0] * len(workers)  # when each worker's last pull was sent
        self.now = 0.0  # simulated seconds
        self.started = False

    def run(self) -> None:
        """Process events until every worker has flushed (or the queue runs dry)."""
        self.advance(None)
        if not self.core.done:
            raise RuntimeError(f"simulation ended with workers not retired: {self.core.retired}")

    def advance(self, until: int | None) -> None:
        """Process events until the server reaches version ``until`` (None: to the end)."""
        if not self.started or (self.core.done and not self.core.stopping):
            # a fresh run, or a finished one resumed with a larger step target: all pull
            self.core.reopen()
            for w in range(len(self.workers)):
                self._send_pull(w, self.now)
            self.started = True
        every = self.core.cfg.checkpoint_every
        while self.queue and (until is None or self.core.state.version < until):
            before = self.core.state.version
            event = self.queue.pop()
            self.now = event.time
            self._handle(event.worker, event.kind)
            after = self.core.state.version
            if every and after // every > before // every:
                self.core.checkpoint(self.state_dict())

    def _handle(self, w: int, kind: str) -> None:
        if kind == "pull":
            self._deliver(self.core.pull(w))  # (1)
        elif kind == "computed":
            self._computed(w)
        elif kind == "push":
            push, version = self.pending.pop(w)
            if push is None:
                raise RuntimeError(f"worker {w}: a push event without a computed push")
            self._deliver(  # (4)
                self.core.push(w, push.msg, version, push.loss, push.residual_norm, push.nbytes)
            )
        else:  # "flush"
            msg, version = self.flushes.pop(w)
            msg = self.workers[w].flush() if msg is None else msg  # the residual, taken now
            nbytes = wire_bytes(msg.nnz, msg.numel, msg.values.dtype)
            self._deliver(self.core.flush(w, msg, version, nbytes))  # (5)

    def _send_pull(self, w: int, ready: float) -> None:
        self.pull_ready[w] = ready
        self.queue.push(self.up.send(ready, 0), w, "pull")

    def _deliver(self, replies: Replies) -> None:
        """Send the core's replies down the link and start what each one starts."""
        for w, reply in replies:
            arrival = self.down.send(self.now, reply.nbytes)
            if reply.kind == "MODEL":  # (2)
                self.last_version[w] = reply.version
                push = self.workers[w].step(self.core.state.x)
                self.pending[w] = (push, reply.version)
                seconds = self.slowdowns[w] * self.times.sample(self.time_gens[w])
                self.core.recorder.cycled(seconds, arrival - self.pull_ready[w])
                self.queue.push(arrival + seconds, w, "computed")
            elif reply.kind == "STOP":  # (5)
                self.flushes[w] = (None, self.last_version[w])
                nnz = self._flush_nnz(w)
                ready = self.up.send(arrival, wire_bytes(nnz, self.core.state.numel))
                self.queue.push(ready, w, "flush")

    def _flush_nnz(self, w: int) -> int:
        """Entries worker ``w``'s flush will carry: the non-zeros of its residual (float32)."""
        worker = self.workers[w]
        rest = worker.memory.compensate(torch.zeros(worker.model.numel))  # (d,) e + 0
        return int(torch.count_nonzero(rest))

    def _computed(self, w: int) -> None:
        """(3) Push what was computed (nothing if the gradient was not finite), then pull."""
        push, _ = self.pending[w]
        if push is None:
            del self.pending[w]
        else:
            self.queue.push(self.up.send(self.now, push.nbytes), w, "push")
        self._send_pull(w, self.now)

    def state_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue.state_dict(),
            "up": self.up.state_dict(),
            "down": self.down.state_dict(),
            "time_gens": [g.get_state() for g in self.time_gens],
            "workers": [gw.state_dict() for gw in self.workers],
            "pending": [[w, _push_state(p), v] for w, (p, v) in sorted(self.pending.items())],
            "flushes": [[w, _msg_state(m), v] for w, (m, v) in sorted(self.flushes.items())],
            "last_version": list(self.last_version),
            "pull_ready": list(self.pull_ready),
            "now": self.now,
            "started": self.started,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.queue.load_state_dict(state["queue"])
        self.up.load_state_dict(state["up"])
        self.down.load_state_dict(state["down"])
        for gen, saved in zip(self.time_gens, state["time_gens"], strict=True):
            gen.set_state(saved)
        for gw, saved in zip(self.workers, state["workers"], strict=True):
            gw.load_state_dict(saved)
        self.pending = {int(w): (_push_of(p), int(v)) for w, p, v in state["pending"]}
        self.flushes = {int(w): (_msg_of(m), int(v)) for w, m, v in state["flushes"]}
        self.last_version = [int(v) for v in state["last_version"]]
        self.now = float(state["now"])
        # absent in checkpoints before the time split: the first cycles count from the resume
        ready = state.get("pull_ready", [self.now] * len(self.workers))
        self.pull_ready = [float(t) for t in ready]
        self.started = bool(state["started"])


def _msg_state(msg: SparseMessage | None) -> dict[str, Any] | None:
    if msg is None:
        return None
    return {"indices": msg.indices.clone(), "values": msg.values.clone(), "numel": msg.numel}


def _msg_of(state: dict[str, Any] | None) -> SparseMessage | None:
    if state is None:
        return None
    return SparseMessage(state["indices"], state["values"], int(state["numel"]))


def _push_state(push: Push | None) -> dict[str, Any] | None:
    if push is None:
        return None
    dense = isinstance(push.msg, Tensor)
    msg = push.msg.clone() if dense else _msg_state(push.msg)
    return {"msg": msg, "loss": push.loss, "residual_norm": push.residual_norm}


def _push_of(state: dict[str, Any] | None) -> Push | None:
    if state is None:
        return None
    msg = state["msg"]
    msg = msg.clone() if isinstance(msg, Tensor) else _msg_of(msg)  # a dense push, or not
    return Push(msg, float(state["loss"]), float(state["residual_norm"]))
