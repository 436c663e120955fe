"""Staleness of the applied updates: count, mean, maximum and histogram.

For updates with staleness tau_1, ..., tau_n (tau = t - t_w, docs/algorithms.md section 4):

    mean = (1/n) sum tau_i      max = max tau_i      histogram[tau] = #{i : tau_i = tau}

The histogram is a dict with string keys so that it goes into ``summary.json`` as it is.
"""

from __future__ import annotations

from typing import Any

__all__ = ["StalenessStats"]


class StalenessStats:
    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def add(self, tau: int) -> None:
        if tau < 0:
            raise ValueError(f"staleness must be >= 0; got {tau}")
        self.counts[tau] = self.counts.get(tau, 0) + 1

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @property
    def mean(self) -> float:
        n = self.n
        return sum(t * c for t, c in self.counts.items()) / n if n else 0.0

    @property
    def max(self) -> int:
        return max(self.counts, default=0)

    def summary(self) -> dict[str, Any]:
        """``{"mean", "max", "count", "histogram": {"0": n0, "1": n1, ...}}``."""
        return {
            "mean": self.mean,
            "max": self.max,
            "count": self.n,
            "histogram": {str(t): self.counts[t] for t in sorted(self.counts)},
        }

    def state_dict(self) -> dict[str, Any]:
        return {"counts": [[t, c] for t, c in sorted(self.counts.items())]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counts = {int(t): int(c) for t, c in state["counts"]}
