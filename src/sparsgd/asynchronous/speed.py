"""Heterogeneous worker speed: compute-time distributions and per-worker slow-down factors.

A worker's time for one gradient, in seconds, is drawn from a distribution and multiplied by
its slow-down factor s_w >= 1 (``--slowdown 1,1,2,4`` makes worker 3 four times slower):

    constant:T                  time = T
    exponential:MEAN            time ~ Exp(rate 1/MEAN)
    shifted-exponential:S,MEAN  time = S + Exp(rate 1/MEAN)       (a floor plus a random tail)
    pareto:XM,ALPHA             time = XM * U^(-1/ALPHA), U ~ Uniform(0, 1]   (heavy tail)

The simulator uses them as the workers' compute times (``--worker-time``); the real workers
sleep a draw per step (``--delay``) and stretch their measured compute time by s_w, so that
staleness is real. Draws come from a ``torch.Generator`` passed in, never global state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Protocol

import torch

from sparsgd.asynchronous.spec import SpecKind, check_nonneg, make_from_spec

__all__ = [
    "TIME_DISTRIBUTIONS",
    "ConstantTime",
    "ExponentialTime",
    "Pace",
    "ParetoTime",
    "ShiftedExponentialTime",
    "TimeDistribution",
    "make_time_distribution",
    "parse_slowdown",
]


class TimeDistribution(Protocol):
    """Seconds for one gradient computation."""

    spec: str

    def sample(self, gen: torch.Generator) -> float: ...


def _uniform01(gen: torch.Generator) -> float:
    """U in (0, 1]: ``1 - rand`` never returns 0, so powers and logs stay finite."""
    return 1.0 - float(torch.rand((), dtype=torch.float64, generator=gen))


class ConstantTime:
    def __init__(self, seconds: float) -> None:
        self.seconds = check_nonneg(seconds, "constant time T")
        self.spec = f"constant:{self.seconds}"

    def sample(self, gen: torch.Generator) -> float:
        return self.seconds


class ExponentialTime:
    def __init__(self, mean: float) -> None:
        self.mean = check_nonneg(mean, "exponential MEAN", positive=True)
        self.spec = f"exponential:{self.mean}"

    def sample(self, gen: torch.Generator) -> float:
        return -self.mean * math.log(_uniform01(gen))  # inverse CDF of Exp(1 / mean)


class ShiftedExponentialTime:
    def __init__(self, shift: float, mean: float) -> None:
        self.shift = check_nonneg(shift, "shifted-exponential shift S")
        self.mean = check_nonneg(mean, "shifted-exponential MEAN", positive=True)
        self.spec = f"shifted-exponential:{self.shift},{self.mean}"

    def sample(self, gen: torch.Generator) -> float:
        return self.shift - self.mean * math.log(_uniform01(gen))


class ParetoTime:
    def __init__(self, scale: float, alpha: float) -> None:
        self.scale = check_nonneg(scale, "pareto scale XM", positive=True)
        self.alpha = check_nonneg(alpha, "pareto ALPHA", positive=True)
        self.spec = f"pareto:{self.scale},{self.alpha}"

    def sample(self, gen: torch.Generator) -> float:
        return self.scale * _uniform01(gen) ** (-1.0 / self.alpha)


TIME_DISTRIBUTIONS: dict[str, SpecKind[TimeDistribution]] = {
    "constant": SpecKind("constant:T", ("T",), "always T seconds", ConstantTime),
    "exponential": SpecKind(
        "exponential:MEAN", ("MEAN",), "exponential with mean MEAN s", ExponentialTime
    ),
    "shifted-exponential": SpecKind(
        "shifted-exponential:S,MEAN",
        ("S", "MEAN"),
        "S s plus an exponential of mean MEAN s",
        ShiftedExponentialTime,
    ),
    "pareto": SpecKind(
        "pareto:XM,ALPHA", ("XM", "ALPHA"), "Pareto with scale XM s and shape ALPHA", ParetoTime
    ),
}


def make_time_distribution(spec: str) -> TimeDistribution:
    """``"exponential:0.01"`` -> :class:`ExponentialTime`; unknown names list the valid ones."""
    return make_from_spec(spec, TIME_DISTRIBUTIONS, "worker-time distribution")


def parse_slowdown(text: str | Sequence[float] | None, workers: int) -> tuple[float, ...]:
    """Per-worker slow-down factors: ``"1,1,2,4"`` for 4 workers; ``None`` means all 1.

    Each factor must be a finite number >= 1 (a worker can be slowed down, not sped up) and
    there must be exactly one per worker.
    """
    if text is None:
        return (1.0,) * workers
    parts = text.split(",") if isinstance(text, str) else list(text)
    text = ",".join(str(p) for p in parts)  # errors quote what was written: '1,nan'
    factors = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValueError(
                f"slowdown factors must be numbers; got {part!r} in {text!r}"
            ) from None
        if not math.isfinite(value) or value < 1:
            raise ValueError(
                f"slowdown factors must be finite and >= 1 (a worker can only be slowed); "
                f"got {value} in {text!r}"
            )
        factors.append(value)
    if len(factors) != workers:
        raise ValueError(
            f"slowdown needs one factor per worker ({workers}); got {len(factors)} in {text!r}"
        )
    return tuple(factors)


class Pace:
    """A real worker's injected slowness: after a step that computed for c seconds, sleep

        (s_w - 1) * c  +  delay draw       # s_w: slow-down factor; delay: ``--delay`` or 0

    so worker w takes s_w times its natural time plus a random delay per step.
    """

    def __init__(
        self, slowdown: float, delay: TimeDistribution | None, generator: torch.Generator
    ) -> None:
        if not math.isfinite(slowdown) or slowdown < 1:
            raise ValueError(f"slowdown must be finite and >= 1; got {slowdown}")
        self.slowdown, self.delay, self.generator = slowdown, delay, generator
        self.slept = 0.0  # seconds, in total

    def extra_seconds(self, compute_seconds: float) -> float:
        delay = 0.0 if self.delay is None else self.delay.sample(self.generator)
        return (self.slowdown - 1.0) * max(0.0, compute_seconds) + delay

    def wait(self, compute_seconds: float) -> None:
        """Sleep :meth:`extra_seconds` (compute_seconds)."""
        seconds = self.extra_seconds(compute_seconds)
        if seconds > 0:
            time.sleep(seconds)
            self.slept += seconds
