"""Everything the parameter server decides, without a transport.

The real server (:mod:`sparsgd.asynchronous.server`, frames over torch.distributed) and the
simulator's workers (:mod:`sparsgd.sim.worker_sim`, events in a queue) drive the same core:

    pull(w)                    -> MODEL (x_t, or the coordinates changed since w's last copy),
                                  STOP once t >= steps, or nothing yet: the policy's SSP
                                  bound holds w                                        # (1)
    push(w, c, t_w, ...)       -> ServerState.push (the whole update), count, log; then
                                  evaluate / checkpoint on schedule; release held pulls # (2)
    flush(w, e, t_w)           -> apply the worker's last residual, answer DONE, retire w  # (3)
    lose(w, why) / drop(w, why) -> a dead worker (or one whose stream broke) leaves the
                                  run; the others go on                                  # (4)
    halt(why)                  -> end the run early: every later pull gets STOP           # (5)

Liveness (5): the run is halted, with the reason in log.jsonl and summary.json (``halted``),
after ``cfg.stall_pushes`` refused pushes in a row (non-finite or too large: every worker has
diverged) or, on the real server (:meth:`ServerCore.watch`), when the version has not moved
for ``cfg.timeout_s`` seconds (workers that only skip non-finite gradients push nothing).

Each call returns the replies to send now, as ``(worker, Reply)`` pairs: a push can release
other workers' pulls that SSP held. The run is over when every worker is retired.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.run_record import AsyncRecorder
from sparsgd.asynchronous.server_state import RejectedPush, ServerState
from sparsgd.comm.ps_transport import wire_bytes
from sparsgd.compress.message import SparseMessage, dense_bytes, index_dtype, message_bytes
from sparsgd.runs import RunDir

__all__ = ["Replies", "Reply", "ServerCore"]

logger = logging.getLogger(__name__)

WARNED_REFUSALS = 10  # refused pushes logged one by one; later ones are only counted


@dataclass(frozen=True)
class Reply:
    kind: str  # "MODEL" | "STOP" | "DONE"
    version: int = 0
    msg: SparseMessage | None = None
    nbytes: int = 0  # payload bytes on the wire (what the recorder counted as sent)


Replies = list[tuple[int, Reply]]


class ServerCore:
    """Steps (1)-(4) above for ``cfg.workers`` workers around one :class:`ServerState`."""

    def __init__(
        self,
        cfg: AsyncConfig,
        state: ServerState,
        recorder: AsyncRecorder,
        evaluate: Callable[[Tensor], tuple[float, float]],
        now: Callable[[], float],
        num_train: int,
        run_dir: RunDir | None = None,
        num_classes: int | None = None,
    ) -> None:
        self.cfg, self.state, self.recorder = cfg, state, recorder
        self.evaluate, self.now, self.num_train = evaluate, now, num_train
        self.run_dir, self.num_classes = run_dir, num_classes
        self.eval_seconds = 0.0  # real time spent in run_eval, kept out of train_seconds
        self.held: list[int] = []  # pulls SSP holds, oldest first
        self.holding: dict[int, int] = {}  # worker -> version of the copy it holds
        self.retired: set[int] = set()
        self.auto_checkpoint = True  # False: the caller checkpoints (simulator, real server)
        self.halted: str | None = None  # (5) why the run was ended early
        self.refused_in_row = 0  # non-finite / too-large pushes since the last applied one
        self.refusals_logged = 0  # refused pushes and flushes logged so far (WARNED_REFUSALS)
        self.advanced_at = now()  # when the version last moved (or the run started)
        self._every: Tensor | None = None  # (d,) 0, 1, ..., d - 1: a whole-model reply's indices

    @property
    def stopping(self) -> bool:
        return self.state.version >= self.cfg.steps or self.halted is not None

    @property
    def done(self) -> bool:
        return len(self.retired) == self.cfg.workers

    def pull(self, worker: int) -> Replies:
        """(1) A worker asks for the model (a header-only frame on the uplink)."""
        self.recorder.received(worker, 0)
        if self.stopping:
            return [(worker, self._reply(worker, "STOP"))]
        if not self.state.may_pull(worker):
            self.held.append(worker)
            return []
        return [(worker, self._model(worker))]

    def _model(self, worker: int) -> Reply:
        since = self.holding.get(worker) if self.cfg.sparse_downlink else None
        d = self.state.numel
        version, x = self.state.pull(worker)  # x_t itself: no update writes into it
        changed = None if since is None else self.state.changed_since(since)
        # a change set the wire would send dense (zeros elsewhere) is sent as the whole x:
        # that copy with every index, in order (one index tensor kept for all such replies)
        if changed is None or message_bytes(changed.numel(), d) >= dense_bytes(d):
            if self._every is None:
                self._every = torch.arange(d, dtype=index_dtype(d))
            msg = SparseMessage(self._every, x, d)
        else:
            msg = SparseMessage(changed.to(index_dtype(d)), x[changed], d)
        self.holding[worker] = version
        return self._reply(worker, "MODEL", version, msg)

    def _reply(
        self, worker: int, kind: str, version: int | None = None, msg: SparseMessage | None = None
    ) -> Reply:
        """A reply to ``worker`` at ``version`` (default: the current one), counted as sent."""
        nbytes = 0 if msg is None else wire_bytes(msg.nnz, self.state.numel)
        self.recorder.sent(worker, nbytes)
        return Reply(kind, self.state.version if version is None else version, msg, nbytes)

    def push(
        self,
        worker: int,
        msg: Any,
        version: Any,
        loss: float,
        residual_norm: float,
        nbytes: int,
        x_pulled: Tensor | None = None,
    ) -> Replies:
        """(2) Apply one push in arrival order (or refuse it, counted).

        ``x_pulled``: the model the gradient was taken on, when the caller has it (the
        drawn-staleness simulator); by default the copy the server kept at ``pull``.
        """
        self.recorder.received(worker, nbytes)
        self.recorder.counts["pushes"][worker] += 1
        try:
            self.state.check_report(loss, residual_norm)
            started = time.perf_counter()
            app = self.state.push(msg, version, worker, x_pulled=x_pulled)
            self.recorder.timed("apply", time.perf_counter() - started)
        except RejectedPush as err:
            self._warn_refused(f"worker {worker}", err)
            self._refused(err)
            return self.release()
        self.recorder.reported(worker, residual_norm)  # the norm, once it is known good
        self.refused_in_row, self.advanced_at = 0, self.now()
        self.recorder.applied(app, worker, loss, self.now(), flush=False)
        self._on_schedule()
        return self.release()

    def flush(self, worker: int, msg: Any, version: Any, nbytes: int) -> Replies:
        """(3) The worker's residual, applied without delay compensation (x_pulled = x_t)."""
        self.recorder.received(worker, nbytes)
        if isinstance(msg, SparseMessage) and msg.nnz > 0:
            try:
                started = time.perf_counter()
                app = self.state.push(msg, version, worker, flush=True)
                self.recorder.timed("apply", time.perf_counter() - started)
            except RejectedPush as err:
                self._warn_refused(f"worker {worker} flush", err)
            else:
                self.recorder.applied(app, worker, None, self.now(), flush=True)
                self._on_schedule()
        done = self._reply(worker, "DONE")
        return [(worker, done), *self._retire(worker)]

    def lose(self, worker: int, reason: str) -> Replies:
        """(4) ``worker`` is gone (killed, crashed): record when and what it held."""
        if worker in self.retired:
            return []
        death = self.recorder.died(worker, self.state.version, self.now(), reason)
        logger.warning("worker %d lost at step %d: %s", worker, death["step"], reason)
        return self._retire(worker)

    def drop(self, worker: int, reason: str) -> Replies:
        """(4) ``worker`` sent a frame that breaks its stream: refuse it, stop the worker."""
        self.state.reject("malformed", reason)
        self.recorder.counts["pushes"][worker] += 1
        stop = self._reply(worker, "STOP")
        return [(worker, stop), *self.lose(worker, f"malformed: {reason}")]

    def _warn_refused(self, who: str, err: RejectedPush) -> None:
        """Log the first WARNED_REFUSALS refusals of the run, then say that later ones are
        only counted (the summary's ``pushes_rejected``): a diverged run refuses thousands."""
        self.refusals_logged += 1
        if self.refusals_logged <= WARNED_REFUSALS:
            logger.warning("%s: %s", who, err)
        if self.refusals_logged == WARNED_REFUSALS:
            logger.warning(
                "%d refused pushes logged; later ones are counted in the summary "
                "(pushes_rejected), not logged",
                WARNED_REFUSALS,
            )

    def _refused(self, err: RejectedPush) -> None:
        """(5) Count refusals in a row that mean divergence; halt after ``stall_pushes``."""
        if err.reason not in ("non_finite", "too_large"):
            return
        self.refused_in_row += 1
        if self.refused_in_row >= self.cfg.stall_pushes and self.halted is None:
            self.halt(
                f"{self.refused_in_row} pushes in a row refused as non-finite or too large "
                f"(--stall-pushes {self.cfg.stall_pushes}); the workers have diverged"
            )

    def halt(self, reason: str) -> Replies:
        """(5) End the run at the current version: held pulls and later ones get STOP."""
        if self.halted is None:
            self.halted = reason
            logger.error("run halted at update %d: %s", self.state.version, reason)
            self.recorder.halted(self.state.version, self.now(), reason)
        return self.release()

    def watch(self) -> Replies:
        """(5) Halt when the version has not moved for ``cfg.timeout_s`` (real server)."""
        idle = self.now() - self.advanced_at
        if self.halted is None and not self.stopping and idle > self.cfg.timeout_s:
            return self.halt(
                f"no new model version for {idle:.0f} s (--timeout {self.cfg.timeout_s:g}); "
                "the workers send nothing that can be applied (diverged, or all held)"
            )
        return []

    def reopen(self) -> None:
        """Every retired worker takes part again (a finished run resumed with more steps)."""
        self.state.live |= self.retired
        self.retired.clear()

    def _retire(self, worker: int) -> Replies:
        self.retired.add(worker)
        self.state.retire(worker)
        self.held = [w for w in self.held if w != worker]
        return self.release()

    def release(self) -> Replies:
        """Answer the held pulls that may go now (all of them with STOP once stopping)."""
        replies: Replies = []
        for worker in list(self.held):
            if self.stopping:
                replies.append((worker, self._reply(worker, "STOP")))
            elif self.state.may_pull(worker):
                replies.append((worker, self._model(worker)))
            else:
                continue
            self.held.remove(worker)
        return replies

    def _on_schedule(self) -> None:
        t = self.state.version
        if t % self.cfg.eval_interval == 0:
            self.run_eval()
        if (
            self.auto_checkpoint
            and self.cfg.checkpoint_every
            and t % self.cfg.checkpoint_every == 0
        ):
            self.checkpoint()

    def run_eval(self) -> None:
        t0 = time.perf_counter()
        accuracy, loss = self.evaluate(self.state.x)
        self.eval_seconds += time.perf_counter() - t0
        epoch = self.state.applied * self.cfg.batch_size / self.num_train
        self.recorder.evaluated(self.state.version, accuracy, loss, epoch, self.now())

    def checkpoint(self, extra: dict[str, Any] | None = None) -> None:
        """Save the server side (and the simulator's ``extra``) at the current version."""
        if self.run_dir is not None:
            self.run_dir.save_checkpoint({**self.state_dict(), "sim": extra}, self.state.version)

    def state_dict(self) -> dict[str, Any]:
        return {
            "server": self.state.state_dict(),
            "recorder": self.recorder.state_dict(),
            "held": list(self.held),
            "holding": [[w, v] for w, v in sorted(self.holding.items())],
            "retired": sorted(self.retired),
        }

    def load_state_dict(self, state: dict[str, Any], workers_restart: bool) -> None:
        """Continue from a checkpoint: model, version, policy state, clocks and counters.

        ``workers_restart``: the real server's workers are new processes that hold nothing,
        so what the server knew about each one (pulls, copies, held requests) is dropped; the
        simulator restores its workers exactly and keeps it.
        """
        self.state.load_state_dict(state["server"])
        self.recorder.load_state_dict(state["recorder"])
        if workers_restart:
            self.state.pulled.clear()
            self.state.pulled_models.clear()
            return
        self.held = [int(w) for w in state["held"]]
        self.holding = {int(w): int(v) for w, v in state["holding"]}
        self.retired = {int(w) for w in state["retired"]}
        for w in self.retired:
            self.state.retire(w)

    def finish(self, wall_seconds: float, **extra: Any) -> dict[str, Any]:
        """Evaluate the final model (unless just done) and write ``summary.json``.

        ``wall_seconds``: real time of the training loop; ``train_seconds`` is that less the
        evaluations inside it.
        """
        train_seconds = wall_seconds - self.eval_seconds
        last = self.recorder.last_eval
        if last is None or last["step"] != self.state.version:
            self.run_eval()
        summary = self.recorder.summary(
            self.state,
            wall_seconds,
            epochs=self.state.applied * self.cfg.batch_size / self.num_train,
            policy=self.cfg.policy,
            compressor=self.cfg.compressor,
            density=self.cfg.density,
            ssp_bound=self.cfg.ssp_bound,
            ssp_max_gap=self.state.max_gap,
            train_seconds=train_seconds,
            num_classes=self.num_classes,
            **extra,
        )
        if self.run_dir is not None:
            self.run_dir.write_summary(summary)
        self.recorder.finished(self.cfg.to_record(), summary)
        return summary
