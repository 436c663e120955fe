"""Bounded staleness (Stale Synchronous Parallel, Ho et al., NIPS 2013) at the server.

Each worker w has a clock c_w = the number of its pushes the server has applied. A worker
asks for the model before each gradient; with bound S the server answers only when

    c_w - min over live workers v of c_v <= S          # (1) not more than S pushes ahead

and otherwise holds the request until the slowest catches up (a push, or a worker leaving,
raises the minimum). Workers that died or finished leave the minimum, so they cannot block the
others forever. With S = None every request is answered at once (no bound). The gap seen at
each granted request is recorded: ``max_gap <= S`` is the property the tests check.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["SSPGate"]


class SSPGate:
    """Clocks, live set and the grant rule (1) for the workers ``workers``."""

    def __init__(self, workers: Iterable[int], bound: int | None) -> None:
        if bound is not None and (isinstance(bound, bool) or bound < 0):
            raise ValueError(f"ssp bound must be an integer >= 0 or None; got {bound!r}")
        self.bound = bound
        self.clocks: dict[int, int] = {w: 0 for w in workers}
        self.live: set[int] = set(self.clocks)
        self.max_gap = 0  # largest c_w - min c_v at a granted request

    def _check(self, worker: int) -> None:
        if worker not in self.clocks:
            raise ValueError(f"worker must be one of {sorted(self.clocks)}; got {worker}")

    def gap(self, worker: int) -> int:
        """``c_w - min over live c_v`` (0 when ``worker`` is the only live one)."""
        self._check(worker)
        others = [self.clocks[v] for v in self.live] or [self.clocks[worker]]
        return self.clocks[worker] - min(others)

    def may_pull(self, worker: int) -> bool:
        """Rule (1): may ``worker`` get the model now?"""
        return self.bound is None or self.gap(worker) <= self.bound

    def grant(self, worker: int) -> None:
        """Record that ``worker`` got the model (its gap enters ``max_gap``)."""
        if not self.may_pull(worker):
            raise RuntimeError(
                f"worker {worker} is {self.gap(worker)} pushes ahead; the SSP bound is {self.bound}"
            )
        self.max_gap = max(self.max_gap, self.gap(worker))

    def pushed(self, worker: int) -> None:
        self._check(worker)
        self.clocks[worker] += 1

    def retire(self, worker: int) -> None:
        """``worker`` died or finished: it no longer holds the others back."""
        self._check(worker)
        self.live.discard(worker)

    def state_dict(self) -> dict[str, Any]:
        return {
            "clocks": [[w, c] for w, c in sorted(self.clocks.items())],
            "max_gap": self.max_gap,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        clocks = {int(w): int(c) for w, c in state["clocks"]}
        if set(clocks) != set(self.clocks):
            raise ValueError(
                f"ssp state is for workers {sorted(clocks)}; have {sorted(self.clocks)}"
            )
        self.clocks = clocks
        self.max_gap = int(state["max_gap"])
