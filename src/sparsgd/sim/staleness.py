"""Staleness distributions for the simulator's drawn-staleness mode (docs/algorithms.md section 4).

Each update t draws tau and the gradient is taken on the model of version t - tau:

    constant:K       tau = K
    uniform:S        tau ~ Uniform{0, 1, ..., S}
    geometric:MEAN   tau ~ Geometric on {0, 1, ...}, P(tau = k) = p (1 - p)^k, p = 1 / (1 + MEAN)
    poisson:MEAN     tau ~ Poisson(MEAN)

The simulator keeps the last ``cap + 1`` models, so every distribution has a ``cap`` (tau_max):
K and S for the first two; for the unbounded ones the smallest K with P(tau > K) <= TAIL_MASS,
and a draw above it is clipped to it (it happens with probability at most TAIL_MASS). Early in
a run tau is also clipped to t, the number of versions that exist.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

from sparsgd.asynchronous.spec import SpecKind, check_nonneg, check_nonneg_int, make_from_spec

__all__ = [
    "STALENESS_DISTRIBUTIONS",
    "TAIL_MASS",
    "ConstantStaleness",
    "GeometricStaleness",
    "PoissonStaleness",
    "StalenessDistribution",
    "UniformStaleness",
    "make_staleness",
]

TAIL_MASS = 1e-6  # probability a draw of an unbounded distribution is clipped to its cap
MAX_CAP = 100_000  # models kept are cap + 1 flat copies: refuse means that cannot fit


class StalenessDistribution(Protocol):
    spec: str
    cap: int  # tau_max: draws never exceed it

    def sample(self, gen: torch.Generator) -> int: ...


class ConstantStaleness:
    def __init__(self, k: float) -> None:
        self.cap = check_nonneg_int(k, "constant staleness K")
        self.spec = f"constant:{self.cap}"

    def sample(self, gen: torch.Generator) -> int:
        return self.cap


class UniformStaleness:
    def __init__(self, s: float) -> None:
        self.cap = check_nonneg_int(s, "uniform staleness bound S")
        self.spec = f"uniform:{self.cap}"

    def sample(self, gen: torch.Generator) -> int:
        return int(torch.randint(0, self.cap + 1, (), generator=gen))


class GeometricStaleness:
    def __init__(self, mean: float) -> None:
        self.mean = check_nonneg(mean, "geometric staleness MEAN")
        self.spec = f"geometric:{self.mean}"
        q = self.mean / (1.0 + self.mean)  # 1 - p, the chance of one more version of delay
        # P(tau > K) = q^(K + 1) <= TAIL_MASS
        cap = 0 if q == 0 else math.ceil(math.log(TAIL_MASS) / math.log(q) - 1)
        if cap > MAX_CAP:
            raise ValueError(
                f"geometric staleness MEAN={mean} is too large (cap {cap} > {MAX_CAP})"
            )
        self.cap = max(0, cap)

    def sample(self, gen: torch.Generator) -> int:
        if self.mean == 0:
            return 0
        u = 1.0 - float(torch.rand((), dtype=torch.float64, generator=gen))  # (0, 1]
        q = self.mean / (1.0 + self.mean)
        tau = math.floor(math.log(u) / math.log(q))  # inverse CDF of the geometric on {0, 1..}
        return min(tau, self.cap)


class PoissonStaleness:
    def __init__(self, mean: float) -> None:
        self.mean = check_nonneg(mean, "poisson staleness MEAN")
        if self.mean > MAX_CAP / 2:
            raise ValueError(f"poisson staleness MEAN={mean} is too large (> {MAX_CAP / 2})")
        self.spec = f"poisson:{self.mean}"
        self.cap = self._cap()

    def _cap(self) -> int:
        """Smallest K with P(tau > K) <= TAIL_MASS, from the Poisson pmf in log space."""
        if self.mean == 0:
            return 0
        cdf, k = 0.0, 0
        while True:
            cdf += math.exp(k * math.log(self.mean) - self.mean - math.lgamma(k + 1))
            if 1.0 - cdf <= TAIL_MASS or k >= MAX_CAP:
                return k
            k += 1

    def sample(self, gen: torch.Generator) -> int:
        rate = torch.tensor([self.mean], dtype=torch.float64)
        return min(int(torch.poisson(rate, generator=gen)[0]), self.cap)


STALENESS_DISTRIBUTIONS: dict[str, SpecKind[StalenessDistribution]] = {
    "constant": SpecKind("constant:K", ("K",), "every update K versions stale", ConstantStaleness),
    "uniform": SpecKind("uniform:S", ("S",), "uniform on 0..S", UniformStaleness),
    "geometric": SpecKind(
        "geometric:MEAN", ("MEAN",), "geometric on 0, 1, ... with mean MEAN", GeometricStaleness
    ),
    "poisson": SpecKind("poisson:MEAN", ("MEAN",), "Poisson with mean MEAN", PoissonStaleness),
}


def make_staleness(spec: str) -> StalenessDistribution:
    """``"uniform:4"`` -> :class:`UniformStaleness`; unknown names list the valid ones."""
    return make_from_spec(spec, STALENESS_DISTRIBUTIONS, "staleness distribution")
