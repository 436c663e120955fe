"""A deterministic event queue for the simulated workers.

Events are ``(time, seq, worker, kind)``; the queue pops the smallest time, and among equal
times the one scheduled first (``seq`` grows by one per push), so two runs with the same seed
pop the same events in the same order, bit for bit. Times are simulated seconds (float).
"""

from __future__ import annotations

import heapq
import math
from typing import Any, NamedTuple

__all__ = ["Event", "EventQueue"]


class Event(NamedTuple):  # a tuple: the heap compares (time, seq) in C; seq never ties
    time: float  # simulated seconds
    seq: int  # tie-break: scheduling order
    worker: int
    kind: str


class EventQueue:
    """Min-heap of :class:`Event` ordered by ``(time, seq)``."""

    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, time: float, worker: int, kind: str) -> Event:
        if not math.isfinite(time) or time < 0:
            raise ValueError(f"event time must be a finite number >= 0; got {time}")
        event = Event(time, self._seq, worker, kind)
        self._seq += 1
        heapq.heappush(self._heap, event)
        return event

    def pop(self) -> Event:
        if not self._heap:
            raise IndexError("pop from an empty event queue")
        return heapq.heappop(self._heap)

    def state_dict(self) -> dict[str, Any]:
        events = sorted(self._heap)
        return {
            "seq": self._seq,
            "times": [e.time for e in events],
            "seqs": [e.seq for e in events],
            "workers": [e.worker for e in events],
            "kinds": [e.kind for e in events],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._seq = int(state["seq"])
        self._heap = [
            Event(float(t), int(s), int(w), str(k))
            for t, s, w, k in zip(
                state["times"], state["seqs"], state["workers"], state["kinds"], strict=True
            )
        ]
        heapq.heapify(self._heap)
