"""What an asynchronous run writes to its run folder, the same for the server and the simulator.

``log.jsonl`` (one JSON object per line, :class:`sparsgd.runs.RunDir`):

    {"kind": "update", "step": t, "worker": w, "tau": tau, "lr": eta(tau), "loss": ..., "taus":
     [...], "workers": [...], "seconds": ...}     every ``log_every`` updates; ``taus`` and
                                                 ``workers`` list every update since the last
                                                 record, so the staleness of each is kept
    {"kind": "eval", "step": t, "test_accuracy": ..., "test_loss": ..., "epoch": ...,
     "seconds": ...}                             every ``eval_every`` updates and at the end
    {"kind": "death", "step": t, "worker": w, ...}   a worker lost mid-run
    {"kind": "halt", "step": t, "reason": ...}       the server ended the run early
    {"kind": "resume", "step": t, "restored_workers": [...], "dropped_residual_norm": [...],
     "dropped": ...}                             a real run resumed: what came back, what not

``seconds`` is wall-clock time for the real server and simulated time in the simulator.

The time split of an ``update`` record, over the window since the previous one (fields named
as a sync ``step`` record's; real server: wall seconds, simulator: simulated seconds). A
worker's cycle runs from sending its pull to having pushed the gradient of the model it got;
the worker parts are means over the cycles reported in the window (none in a window of final
flushes only: no field), the server parts seconds per update applied in it:

    time_compute_s   worker: gradient, memory and compressor (real: plus the --slowdown /
                     --delay sleep, which stands for a slower worker; sim: the drawn time)
    time_comm_s      worker: the rest of its cycle: its pull until it holds the model (the
                     transfer both ways, the server's queue, an SSP hold) and sending its push
    time_apply_s     real server: ServerState.push, the update itself
    time_wait_s      real server: idle, waiting for the next frame from any worker

``summary.json`` has the keys of the synchronous trainer (``final_test_accuracy``,
``bytes_sent_per_rank``, ``dense_bytes_per_rank``, ``steps``, ``wall_seconds``; here "rank"
means worker, in worker order) plus ``staleness`` {mean, max, count, histogram}, uplink and
downlink bytes per worker, the pushes received / applied / rejected, ``dead_workers``,
``halted``, ``resumes`` and the bytes of worker states sent for checkpoints (real server).
"""

from __future__ import annotations

from typing import Any

from sparsgd.asynchronous.server_state import Applied, ServerState
from sparsgd.compress.message import dense_bytes
from sparsgd.runs import RunDir
from sparsgd.runs.tensorboard import TensorBoardLog

__all__ = ["AsyncRecorder"]

PER_WORKER = (
    "pushes",  # PUSH frames received (applied or rejected)
    "applied",  # of which applied
    "flushes",  # FLUSH frames applied
    "uplink_bytes",
    "uplink_messages",
    "downlink_bytes",
    "downlink_messages",
    "state_bytes",  # worker states sent for checkpoints (not training traffic)
)


class AsyncRecorder:
    """Counters per worker, the log window, evaluations and deaths; writes to ``run_dir``."""

    def __init__(
        self,
        run_dir: RunDir | None,
        workers: int,
        numel: int,
        log_every: int,
        tensorboard: bool = False,
        server_times: bool = True,
    ) -> None:
        self.run_dir = run_dir
        self.tensorboard = (
            TensorBoardLog(run_dir.tensorboard_dir) if tensorboard and run_dir else None
        )
        self.workers, self.numel, self.log_every = workers, numel, log_every
        self.counts = {key: [0] * workers for key in PER_WORKER}
        self.residual_norm = [0.0] * workers  # ||e|| each worker reported with its last push
        self.window: list[tuple[int, int, float | None]] = []  # (tau, worker, loss) since last
        self.last_eval: dict[str, Any] | None = None
        self.best_accuracy: float | None = None
        self.deaths: list[dict[str, Any]] = []
        self.halt: dict[str, Any] | None = None  # why and when the server ended the run early
        self.resumes: list[dict[str, Any]] = []  # each resume, and what it could not restore
        # the time split of the window (module docstring): worker cycles, server seconds;
        # server_times False (the simulator, whose server takes no time): no server parts
        self.cycles = {"count": 0.0, "compute": 0.0, "comm": 0.0}
        self.server_seconds = {"apply": 0.0, "wait": 0.0} if server_times else {}

    def _write(self, record: dict[str, Any]) -> None:
        if self.run_dir is not None:
            self.run_dir.log(record)
        if self.tensorboard is not None:
            self.tensorboard.log(record, record["step"])

    def received(self, worker: int, nbytes: int, residual_norm: float | None = None) -> None:
        """One uplink frame of ``nbytes`` payload bytes from ``worker``."""
        self.counts["uplink_bytes"][worker] += nbytes
        self.counts["uplink_messages"][worker] += 1
        if residual_norm is not None:
            self.residual_norm[worker] = residual_norm

    def reported(self, worker: int, residual_norm: float) -> None:
        """The residual norm ``worker`` reported with a push the server accepted."""
        self.residual_norm[worker] = residual_norm

    def halted(self, step: int, seconds: float, reason: str) -> None:
        """The server ended the run early (liveness): one log record, kept for the summary."""
        self.halt = {"step": step, "seconds": seconds, "reason": reason}
        self._write({"kind": "halt", **self.halt})

    def state_received(self, worker: int, nbytes: int) -> None:
        """A STATE frame of ``nbytes`` payload bytes: ``worker``'s state for a checkpoint."""
        self.counts["state_bytes"][worker] += nbytes

    def resumed(self, record: dict[str, Any]) -> None:
        """A resume of the run: one ``resume`` log record, listed in the summary."""
        self.resumes.append(record)
        self._write({"kind": "resume", **record})

    def cycled(self, compute_s: float, comm_s: float) -> None:
        """One worker cycle of the time split: seconds computing, seconds communicating."""
        self.cycles["count"] += 1
        self.cycles["compute"] += compute_s
        self.cycles["comm"] += comm_s

    def timed(self, part: str, seconds: float) -> None:
        """``seconds`` of the server in ``part`` ("apply" or "wait"), for the time split."""
        if part in self.server_seconds:
            self.server_seconds[part] += seconds

    def _time_split(self, updates: int) -> dict[str, float]:
        """The window's ``time_*_s`` fields (module docstring); the window starts again."""
        split = {}
        count = self.cycles["count"]
        if count:
            split["time_compute_s"] = self.cycles["compute"] / count
            split["time_comm_s"] = self.cycles["comm"] / count
        for part, seconds in self.server_seconds.items():
            split[f"time_{part}_s"] = seconds / updates
            self.server_seconds[part] = 0.0
        self.cycles = {"count": 0.0, "compute": 0.0, "comm": 0.0}
        return split

    def sent(self, worker: int, nbytes: int) -> None:
        """One downlink frame of ``nbytes`` payload bytes to ``worker``."""
        self.counts["downlink_bytes"][worker] += nbytes
        self.counts["downlink_messages"][worker] += 1

    def applied(
        self, app: Applied, worker: int, loss: float | None, seconds: float, flush: bool
    ) -> None:
        """An applied push or flush (``loss`` None); a record every ``log_every`` updates."""
        self.counts["flushes" if flush else "applied"][worker] += 1
        self.window.append((app.tau, worker, loss))
        if app.version % self.log_every == 0:
            self._write(
                {
                    "kind": "update",
                    "step": app.version,
                    "worker": worker,
                    "tau": app.tau,
                    "lr": app.rate,
                    "nnz": app.nnz,
                    "flush": flush,
                    "loss": _mean([w[2] for w in self.window if w[2] is not None]),
                    "taus": [w[0] for w in self.window],
                    "workers": [w[1] for w in self.window],
                    "residual_norm": self.residual_norm[worker],
                    "seconds": seconds,
                    "achieved_density": app.nnz / self.numel,
                    **self._totals(),
                    **self._time_split(len(self.window)),
                }
            )
            self.window = []

    def _totals(self) -> dict[str, Any]:
        """Cumulative uplink (sent) and downlink (received) bytes per worker, and dense's."""
        dense = dense_bytes(self.numel)
        return {
            "bytes_sent_total": list(self.counts["uplink_bytes"]),
            "bytes_recv_total": list(self.counts["downlink_bytes"]),
            "dense_bytes_total": [
                dense * (p + f)
                for p, f in zip(self.counts["pushes"], self.counts["flushes"], strict=True)
            ],
        }

    def finished(self, settings: dict[str, Any], summary: dict[str, Any]) -> None:
        """The run's settings against its final metrics in TensorBoard, which then closes."""
        if self.tensorboard is not None:
            self.tensorboard.finish(settings, summary, summary["steps"])

    def evaluated(
        self, step: int, accuracy: float, loss: float, epoch: float, seconds: float
    ) -> None:
        self.last_eval = {
            "kind": "eval",
            "step": step,
            "test_accuracy": accuracy,
            "test_loss": loss,
            "epoch": epoch,
            "seconds": seconds,
        }
        self.best_accuracy = max(accuracy, self.best_accuracy or 0.0)
        self._write(self.last_eval)

    def died(self, worker: int, step: int, seconds: float, reason: str) -> dict[str, Any]:
        """Record a lost worker: when, and the residual mass it took with it."""
        death = {
            "worker": worker,
            "rank": worker + 1,
            "step": step,
            "seconds": seconds,
            "residual_norm": self.residual_norm[worker],
            "pushes_applied": self.counts["applied"][worker],
            "reason": reason,
        }
        self.deaths.append(death)
        self._write({"kind": "death", **death})
        return death

    def summary(self, state: ServerState, wall_seconds: float, **extra: Any) -> dict[str, Any]:
        """The ``summary.json`` of the run (``extra``: mode-specific keys, e.g. sim_seconds)."""
        dense = dense_bytes(self.numel)
        last = self.last_eval or {}
        return {
            "final_test_accuracy": last.get("test_accuracy"),
            "final_test_loss": last.get("test_loss"),
            "best_test_accuracy": self.best_accuracy,
            "steps": state.version,
            "wall_seconds": wall_seconds,
            "bytes_sent_per_rank": list(self.counts["uplink_bytes"]),
            "dense_bytes_per_rank": [
                dense * (a + f)
                for a, f in zip(self.counts["pushes"], self.counts["flushes"], strict=True)
            ],
            "bytes_uplink_per_worker": list(self.counts["uplink_bytes"]),
            "bytes_downlink_per_worker": list(self.counts["downlink_bytes"]),
            "dense_downlink_bytes_per_worker": [
                dense * m for m in self.counts["downlink_messages"]
            ],
            "messages_uplink_per_worker": list(self.counts["uplink_messages"]),
            "messages_downlink_per_worker": list(self.counts["downlink_messages"]),
            "pushes_received_per_worker": list(self.counts["pushes"]),
            "pushes_applied_per_worker": list(self.counts["applied"]),
            "flushes_per_worker": list(self.counts["flushes"]),
            "bytes_worker_state_per_worker": list(self.counts["state_bytes"]),
            "updates_applied": state.applied,
            "pushes_rejected": dict(state.rejected),
            "staleness": state.staleness_summary(),
            "dead_workers": list(self.deaths),
            "halted": self.halt,
            "resumes": list(self.resumes),
            **extra,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "counts": {k: list(v) for k, v in self.counts.items()},
            "residual_norm": list(self.residual_norm),
            "window": [list(w) for w in self.window],
            "last_eval": self.last_eval,
            "best_accuracy": self.best_accuracy,
            "deaths": list(self.deaths),
            "resumes": list(self.resumes),
            "time_split": {"cycles": dict(self.cycles), "server": dict(self.server_seconds)},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        zeros = [0] * self.workers  # a count absent from an older checkpoint
        self.counts = {k: list(state["counts"].get(k, zeros)) for k in PER_WORKER}
        self.residual_norm = list(state["residual_norm"])
        self.window = [(int(t), int(w), loss) for t, w, loss in state["window"]]
        self.last_eval = state["last_eval"]
        self.best_accuracy = state["best_accuracy"]
        self.deaths = list(state["deaths"])
        if self.tensorboard is not None:
            self.tensorboard.forget_baseline()
        self.resumes = list(state.get("resumes", []))  # absent in checkpoints before issue 13
        split = state.get("time_split")  # absent in checkpoints before the async time split
        if split is not None:
            self.cycles = {k: float(v) for k, v in split["cycles"].items()}
            self.server_seconds = {k: float(v) for k, v in split["server"].items()}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
