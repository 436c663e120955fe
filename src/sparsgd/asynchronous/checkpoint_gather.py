"""The real server's checkpoints: x and the server's state with every live worker's state,
all of one moment; and on resume, those states handed back to the new worker processes.

A checkpoint falls due when the version crosses a multiple of ``--checkpoint-every``:

    (1) due at version t: every live worker is asked for its state (SAVE) in answer to its
        next PULL; a worker that SSP holds (its PULL waits) is asked at once
    (2) a worker answers with STATE (:mod:`~sparsgd.asynchronous.worker_state`: residual,
        generators, counters), checked, and waits: its pull is parked
    (3) pushes computed before the worker's PULL keep arriving and are applied (x moves on
        to t' >= t); their senders are asked at their next PULL
    (4) once every live worker is parked: save x_{t'}, the server's state and the W states
        (one file, step t'), then answer the parked pulls as if nothing had happened
    (5) a worker lost meanwhile leaves the set; a state with NaN/Inf is refused (that worker
        is stopped and recorded as dead, with the reason); reaching ``--steps`` or a halt
        cancels the checkpoint (the one at the end holds everything)

Why every state belongs to t': a worker sends STATE only in answer to SAVE, which answers its
PULL; the server handles each worker's frames in the order they were sent, so every push it
sent before that PULL has been applied (or refused) before the SAVE, and between its PULL and
the next MODEL it computes nothing. At (4) no worker is computing and every push sent has been
applied: (x_{t'}, e_0 .. e_{W-1}) is a state the run passes through. Resuming from it continues
the run as it would have gone on; only the arrival order of later pushes, which the operating
system decides, can differ (with one worker there is none: the resumed run is the
uninterrupted one, bit for bit).

Resume (6): :func:`resume_states` checks the saved states and records what comes back and
what cannot (an older checkpoint holds no worker states); :meth:`WorkerCheckpoints.pull`
sends each new worker process its state (STATE) before answering its first PULL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsgd.asynchronous.server_core import Replies, Reply, ServerCore
from sparsgd.asynchronous.worker_state import WorkerStateError, check_worker_state

__all__ = ["StateReply", "WorkerCheckpoints", "resume_states"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StateReply:
    """(6) A worker's saved state, sent to the new process of a resumed run."""

    version: int
    state: dict[str, Any]
    kind: str = "STATE"
    msg: None = None


class WorkerCheckpoints:
    """Steps (1)-(6) around the real server's :class:`ServerCore` (which then checkpoints not
    by itself)."""

    def __init__(self, core: ServerCore, restore: dict[int, dict[str, Any]] | None = None):
        self.core = core
        core.auto_checkpoint = False
        self.restore = dict(restore or {})  # (6) states for the new processes, by worker
        self.gathering = False
        self.pending: set[int] = set()  # (1) live workers whose state is still needed
        self.asked: set[int] = set()  # SAVE sent, STATE not yet received
        self.was_held: set[int] = set()  # asked while SSP held their pull
        self.parked: list[int] = []  # (2) in arrival order
        self.states: dict[int, dict[str, Any]] = {}

    def pull(self, worker: int) -> list[tuple[int, Reply | StateReply]]:
        """A PULL: (6) first the restored state, then SAVE (1) or the core's answer."""
        replies: list[tuple[int, Reply | StateReply]] = []
        if worker in self.restore:
            replies.append((worker, StateReply(self.core.state.version, self.restore.pop(worker))))
        if self.gathering and worker in self.pending:
            self.asked.add(worker)
            return [*replies, (worker, Reply("SAVE", self.core.state.version))]
        return [*replies, *self.core.pull(worker)]

    def state(self, worker: int, state: Any, nbytes: int) -> Replies:
        """(2) A STATE frame: keep it (checked) and park the worker, or refuse it (5)."""
        if worker not in self.asked:
            return self.drop(worker, "a STATE frame the server did not ask for")
        self.asked.discard(worker)
        self.core.recorder.state_received(worker, nbytes)
        if not self.gathering or worker not in self.pending:  # cancelled meanwhile (5)
            return self._answer(worker)
        version = self.core.state.version
        try:
            check_worker_state(state, worker, self.core.state.numel, version)
        except WorkerStateError as err:  # (5) never saved; the worker leaves the run
            logger.error("checkpoint at update %d: %s", version, err)
            self.was_held.discard(worker)
            self.core.recorder.sent(worker, 0)
            stop = (worker, Reply("STOP", version))
            return [stop, *self.lose(worker, f"state refused: {err}")]
        self.states[worker] = state
        self.pending.discard(worker)
        self.parked.append(worker)
        return self._maybe_save()

    def flush(self, worker: int, msg: Any, version: Any, nbytes: int) -> Replies:
        self.pending.discard(worker)
        return [*self.core.flush(worker, msg, version, nbytes), *self._maybe_save()]

    def lose(self, worker: int, reason: str) -> Replies:
        """(5) ``worker`` is gone: the checkpoint goes on without it."""
        self._forget(worker)
        return [*self.core.lose(worker, reason), *self._maybe_save()]

    def drop(self, worker: int, reason: str) -> Replies:
        """(5) ``worker`` broke its stream: stopped, and the checkpoint goes on without it."""
        self._forget(worker)
        return [*self.core.drop(worker, reason), *self._maybe_save()]

    def tick(self, before: int) -> Replies:
        """After each frame (the version was ``before``): cancel (5) or begin (1)."""
        core = self.core
        if self.gathering and core.stopping:
            logger.info("checkpoint at update %d cancelled: the run is ending", core.state.version)
            self.gathering, self.pending, self.states = False, set(), {}
            return self._answer_parked()
        every = core.cfg.checkpoint_every
        crossed = bool(every) and core.state.version // every > before // every
        if crossed and not self.gathering and not core.stopping:
            return self._begin()
        return []

    def save(self, states: dict[int, dict[str, Any]]) -> Path | None:
        """(4) Write the checkpoint of the current version with ``states`` (by worker)."""
        core = self.core
        if core.run_dir is None:
            return None
        workers = [[w, states[w]] for w in sorted(states)]
        state = {**core.state_dict(), "sim": None, "workers": workers}
        return core.run_dir.save_checkpoint(state, core.state.version)

    def _begin(self) -> Replies:
        """(1) Ask every live worker: those SSP holds now, the others at their next PULL."""
        core = self.core
        self.gathering, self.states, self.parked = True, {}, []
        self.pending = set(range(core.cfg.workers)) - core.retired
        held, core.held = list(core.held), []
        self.was_held |= set(held)
        self.asked |= set(held)
        return [(w, Reply("SAVE", core.state.version)) for w in held] + self._maybe_save()

    def _maybe_save(self) -> Replies:
        """(4) Save once no live worker's state is missing; then answer the parked pulls."""
        if not self.gathering or self.pending:
            return []
        self.save(self.states)
        self.gathering, self.states = False, {}
        return self._answer_parked()

    def _answer_parked(self) -> Replies:
        parked, self.parked = self.parked, []
        return [reply for w in parked for reply in self._answer(w)]

    def _answer(self, worker: int) -> Replies:
        """The pull that SAVE answered, answered now (held again if SSP held it)."""
        if worker in self.was_held:
            self.was_held.discard(worker)
            self.core.held.append(worker)
            return self.core.release()
        return self.core.pull(worker)

    def _forget(self, worker: int) -> None:
        self.pending.discard(worker)
        self.asked.discard(worker)
        self.was_held.discard(worker)
        self.restore.pop(worker, None)
        if worker in self.parked:
            self.parked.remove(worker)
            self.states.pop(worker, None)


def resume_states(
    core: ServerCore, checkpoint: dict[str, Any], latest: Path
) -> dict[int, dict[str, Any]]:
    """(6) The worker states to restore from ``checkpoint``; records the resume.

    A worker retired at the checkpoint (flushed, or dead and recorded then) held nothing and
    starts afresh. Any other worker whose state is missing (a checkpoint written before worker
    states were kept) or refused (not whole, not finite) loses its residual, whose norm is the
    one it last reported, and its generators (a new process draws batches keyed by the start
    version): recorded in the ``resume`` record of log.jsonl and summary.json.
    """
    version, workers = core.state.version, core.cfg.workers
    retired = {int(w) for w in checkpoint["retired"]}
    saved = checkpoint.get("workers")  # None: written before worker states were kept
    restore: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    for w, state in saved or []:
        try:
            check_worker_state(state, int(w), core.state.numel, version)
        except WorkerStateError as err:
            problems.append(f"not restored: {err}")
            continue
        restore[int(w)] = state
    lost = [w for w in range(workers) if w not in retired and w not in restore]
    if lost and saved is None:
        problems.insert(0, "the checkpoint holds no worker states (written before they were kept)")
    norms = [float(core.recorder.residual_norm[w]) if w in lost else 0.0 for w in range(workers)]
    dropped = None
    if lost:
        dropped = (
            f"residuals and generators of workers {lost}; "
            + "; ".join(problems)
            + "; new workers start with e = 0 and batches keyed by the start version"
        )
        logger.warning(
            "resume at update %d drops the residuals of workers %s (norms %s)",
            version,
            lost,
            ", ".join(f"{norms[w]:.3g}" for w in lost),
        )
    core.recorder.resumed(
        {
            "step": version,
            "checkpoint": latest.name,
            "restored_workers": sorted(restore),
            "dropped_residual_norm": norms,
            "dropped": dropped,
        }
    )
    return restore
