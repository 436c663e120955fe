"""Staleness drawn from a distribution: one worker, gradients taken on old models.

The simulator's first mode (docs/algorithms.md, staleness policies). At server version t:

    tau  = min(draw from the distribution, t)            # (1) cap: tau <= tau_max
    x_v  = the model of version v = t - tau              # (2) the last tau_max + 1 models kept
    push = worker.step(x_v)                              # (3) gradient, memory, compressor
    core.push(push, version v, x_pulled = x_v)           # (4) the server's own update code

so the update applied at t is exactly the one a push of staleness tau gets from the real
server. With ``constant:0`` this is synchronous single-worker (sparsified) SGD, bit for bit.
The worker trains on the whole training set. Clock: one worker in series, each update costs
its pull (dense x, or with ``--sparse-downlink`` the entries that differ from the worker's
previous copy), its compute time and its push; time-to-accuracy across W workers is the
worker mode's job (:mod:`sparsgd.sim.worker_sim`). Time split (asynchronous.run_record): a
cycle's compute is the drawn time, its comm the pull's and the push's transfers.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
from torch import Tensor

from sparsgd.asynchronous.gradient_worker import GradientWorker
from sparsgd.asynchronous.server_core import ServerCore
from sparsgd.asynchronous.speed import TimeDistribution
from sparsgd.comm.ps_transport import wire_bytes
from sparsgd.sim.network_clock import Link, NetworkModel
from sparsgd.sim.staleness import StalenessDistribution
from sparsgd.worker.seeds import generator_for

__all__ = ["DrawnStalenessSimulation"]


class DrawnStalenessSimulation:
    """Steps (1)-(4) until the server reaches ``cfg.steps``, then the worker flushes."""

    def __init__(
        self,
        core: ServerCore,
        worker: GradientWorker,
        staleness: StalenessDistribution,
        times: TimeDistribution,
        network: NetworkModel,
    ) -> None:
        self.core, self.worker, self.staleness, self.times = core, worker, staleness, times
        self.core.auto_checkpoint = False
        seed = core.cfg.seed
        self.tau_gen = generator_for(seed, "staleness")
        self.time_gen = generator_for(seed, "worker", 0, "time")
        self.up, self.down = Link(network), Link(network)
        x0 = core.state.x  # never written in place (server_state): kept, not copied
        self.history: deque[tuple[int, Tensor]] = deque(
            [(core.state.version, x0)], staleness.cap + 1
        )
        self.copy: Tensor | None = None  # the worker's previous model (sparse downlink)
        self.last_version = 0
        self.skipped = 0
        self.now = 0.0  # simulated seconds

    def run(self) -> None:
        every = self.core.cfg.checkpoint_every
        while not self.core.stopping:
            before = self.core.state.version
            self._update()
            after = self.core.state.version
            if every and after // every > before // every:
                self.core.checkpoint(self.state_dict())
        msg = self.worker.flush()
        nbytes = wire_bytes(msg.nnz, msg.numel, msg.values.dtype)
        self.now = self.up.send(self.now, nbytes)
        self.core.flush(0, msg, self.last_version, nbytes)

    def _update(self) -> None:
        t = self.core.state.version
        tau = min(self.staleness.sample(self.tau_gen), t)  # (1)
        version, x_v = self.history[-(tau + 1)]  # (2)
        started = self.now
        self._pull(x_v)
        pulled = self.now
        self.last_version = version
        push = self.worker.step(x_v)  # (3)
        compute = self.times.sample(self.time_gen)
        self.now += compute
        computed = self.now
        if push is None:
            self.core.recorder.cycled(compute, pulled - started)
            self.skipped += 1
            if self.skipped > self.core.cfg.steps:
                raise RuntimeError(f"{self.skipped} gradients were not finite; lower --lr")
            return
        nbytes = push.nbytes
        self.now = self.up.send(self.now, nbytes)
        self.core.recorder.cycled(compute, pulled - started + self.now - computed)
        self.core.push(  # (4)
            0, push.msg, version, push.loss, push.residual_norm, nbytes, x_pulled=x_v
        )
        if self.core.state.version > t:
            self.history.append((self.core.state.version, self.core.state.x))

    def _pull(self, x_v: Tensor) -> None:
        """Count the pull of ``x_v``: dense, or the entries that differ from the last copy."""
        self.core.recorder.received(0, 0)
        if self.core.cfg.sparse_downlink and self.copy is not None:
            nnz = int((x_v.view(torch.int32) != self.copy.view(torch.int32)).sum())
        else:
            nnz = x_v.numel()
        nbytes = wire_bytes(nnz, x_v.numel())
        self.core.recorder.sent(0, nbytes)
        self.now = self.down.send(self.now, nbytes)
        self.copy = x_v

    def state_dict(self) -> dict[str, Any]:
        return {
            "tau_gen": self.tau_gen.get_state(),
            "time_gen": self.time_gen.get_state(),
            "up": self.up.state_dict(),
            "down": self.down.state_dict(),
            "history_versions": [v for v, _ in self.history],
            "history_models": [x.clone() for _, x in self.history],
            "copy": None if self.copy is None else self.copy.clone(),
            "worker": self.worker.state_dict(),
            "last_version": self.last_version,
            "skipped": self.skipped,
            "now": self.now,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tau_gen.set_state(state["tau_gen"])
        self.time_gen.set_state(state["time_gen"])
        self.up.load_state_dict(state["up"])
        self.down.load_state_dict(state["down"])
        pairs = zip(state["history_versions"], state["history_models"], strict=True)
        self.history = deque(((int(v), x.clone()) for v, x in pairs), self.staleness.cap + 1)
        self.copy = None if state["copy"] is None else state["copy"].clone()
        self.worker.load_state_dict(state["worker"])
        self.last_version = int(state["last_version"])
        self.skipped = int(state["skipped"])
        self.now = float(state["now"])
