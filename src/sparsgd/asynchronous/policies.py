"""Server-side update policies: how one push of staleness tau moves the model.

The server holds x_t. A push ``(c, t_w)`` arrives (c: the worker's sparsified gradient, t_w:
the version it pulled), ``tau = t - t_w``, and the policy gives a direction d and a step size
eta(tau) (docs/algorithms.md section 4):

    vanilla          d = c                                      eta(tau) = eta
    staleness_aware  d = c                                      eta(tau) = eta / max(1, tau)
                     (Zhang, Gupta, Lian, Liu, IJCAI 2016)
    dampening        d = c                                      eta(tau) = eta exp(-beta tau)
                     (Kardam: Damaskinos et al., ICML 2018)
    dc_asgd          d = c + lambda_t * c * c * (x_t - x_{t_w})  eta(tau) = eta   (element-wise)
                     (DC-ASGD: Zheng et al., ICML 2017)
                     fixed:     lambda_t = lambda
                     adaptive:  ms <- m ms + (1 - m) c * c ;  lambda_t = lambda / sqrt(ms + eps)
    ssp              vanilla steps; the server makes a worker wait while it is more than S
                     pushes ahead of the slowest live worker (Ho et al., NIPS 2013; ssp.py)

The server (:mod:`sparsgd.asynchronous.server_state`) then applies, with optional server
momentum mu, ``u <- mu u + eta(tau) d; x <- x - u`` (mu = 0: ``x <- x - eta(tau) d``). Where c
is zero, DC-ASGD's correction is zero too, so a sparse push stays a sparse step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from sparsgd.asynchronous.spec import check_nonneg, check_nonneg_int

__all__ = [
    "POLICIES",
    "DelayCompensated",
    "ExponentialDampening",
    "FixedRate",
    "Policy",
    "PolicyEntry",
    "PolicySettings",
    "StalenessAware",
    "make_policy",
]

DC_DECAY = 0.95  # m of the adaptive DC-ASGD mean square, as in Zheng et al.'s DC-ASGD-a
DC_EPS = 1e-7  # keeps lambda / sqrt(ms + eps) finite where a coordinate never had a gradient


class Policy(Protocol):
    """One rule of the table above; may keep state (the adaptive mean square)."""

    name: str
    needs_pulled_model: bool  # True when direction() reads x_{t_w}

    def rate(self, tau: int) -> float:
        """eta(tau) for a push of staleness ``tau >= 0``."""
        ...

    def direction(self, c: Tensor, x: Tensor, x_pulled: Tensor | None) -> Tensor:
        """d for the dense (d,) push ``c``; does not modify its arguments."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class PolicySettings:
    """Every parameter a policy may read; each is checked when the settings are made."""

    lr: float
    damping_beta: float = 0.1  # dampening: beta of exp(-beta tau)
    dc_lambda: float = 0.04  # dc_asgd: lambda (fixed) or lambda_0 (adaptive)
    dc_adaptive: bool = False
    ssp_bound: int | None = None  # SSP: pushes a worker may run ahead of the slowest

    def __post_init__(self) -> None:
        check_nonneg(self.lr, "lr", positive=True)
        check_nonneg(self.damping_beta, "damping_beta")
        check_nonneg(self.dc_lambda, "dc_lambda")
        if self.ssp_bound is not None:
            if isinstance(self.ssp_bound, bool) or not isinstance(self.ssp_bound, int):
                raise TypeError(f"ssp_bound must be an integer >= 0; got {self.ssp_bound!r}")
            check_nonneg_int(self.ssp_bound, "ssp_bound")


def _check_tau(tau: int) -> int:
    if isinstance(tau, bool) or not isinstance(tau, int) or tau < 0:
        raise ValueError(f"staleness tau must be an integer >= 0; got {tau!r}")
    return tau


class _Stateless:
    needs_pulled_model = False

    def direction(self, c: Tensor, x: Tensor, x_pulled: Tensor | None) -> Tensor:
        return c

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"policy {self.name!r} keeps no state; got keys {sorted(state)}")


class FixedRate(_Stateless):
    """``eta(tau) = eta`` (vanilla ASGD, and the steps of SSP)."""

    def __init__(self, lr: float, name: str = "vanilla") -> None:
        self.lr = check_nonneg(lr, "lr", positive=True)
        self.name = name

    def rate(self, tau: int) -> float:
        _check_tau(tau)
        return self.lr


class StalenessAware(_Stateless):
    """``eta(tau) = eta / max(1, tau)``."""

    name = "staleness_aware"

    def __init__(self, lr: float) -> None:
        self.lr = check_nonneg(lr, "lr", positive=True)

    def rate(self, tau: int) -> float:
        return self.lr / max(1, _check_tau(tau))


class ExponentialDampening(_Stateless):
    """``eta(tau) = eta exp(-beta tau)``."""

    name = "dampening"

    def __init__(self, lr: float, beta: float) -> None:
        self.lr = check_nonneg(lr, "lr", positive=True)
        self.beta = check_nonneg(beta, "damping_beta")

    def rate(self, tau: int) -> float:
        return self.lr * math.exp(-self.beta * _check_tau(tau))


class DelayCompensated:
    """DC-ASGD: ``d = c + lambda_t c*c*(x_t - x_{t_w})``, lambda fixed or adaptive."""

    name = "dc_asgd"
    needs_pulled_model = True

    def __init__(self, lr: float, lam: float, adaptive: bool = False) -> None:
        self.lr = check_nonneg(lr, "lr", positive=True)
        self.lam = check_nonneg(lam, "dc_lambda")
        self.adaptive = bool(adaptive)
        self.ms: Tensor | None = None  # (d,) running mean square of c (adaptive only)

    def rate(self, tau: int) -> float:
        _check_tau(tau)
        return self.lr

    def direction(self, c: Tensor, x: Tensor, x_pulled: Tensor | None) -> Tensor:
        if x_pulled is None:
            raise ValueError("dc_asgd needs the model the worker pulled (x_pulled); got None")
        c2 = c * c
        if not self.adaptive:
            return c + self.lam * c2 * (x - x_pulled)
        if self.ms is None:
            self.ms = torch.zeros_like(c)
        self.ms.mul_(DC_DECAY).add_(c2, alpha=1.0 - DC_DECAY)  # ms <- m ms + (1 - m) c*c
        lam_t = self.lam / torch.sqrt(self.ms + DC_EPS)
        return c + lam_t * c2 * (x - x_pulled)

    def state_dict(self) -> dict[str, Any]:
        return {} if self.ms is None else {"ms": self.ms.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unknown = set(state) - {"ms"}
        if unknown:
            raise ValueError(f"policy 'dc_asgd' state has unknown keys {sorted(unknown)}")
        self.ms = state["ms"].clone() if "ms" in state else None


@dataclass(frozen=True)
class PolicyEntry:
    syntax: str  # the options that set its parameters
    build: Any  # Callable[[PolicySettings], Policy]


POLICIES: dict[str, PolicyEntry] = {
    "vanilla": PolicyEntry("vanilla (eta)", lambda s: FixedRate(s.lr)),
    "staleness_aware": PolicyEntry(
        "staleness_aware (eta / max(1, tau))", lambda s: StalenessAware(s.lr)
    ),
    "dampening": PolicyEntry(
        "dampening (eta exp(-beta tau); --damping-beta BETA)",
        lambda s: ExponentialDampening(s.lr, s.damping_beta),
    ),
    "dc_asgd": PolicyEntry(
        "dc_asgd (c + lambda c*c*(x_t - x_pulled); --dc-lambda L [--dc-adaptive])",
        lambda s: DelayCompensated(s.lr, s.dc_lambda, s.dc_adaptive),
    ),
    "ssp": PolicyEntry(
        "ssp (vanilla steps, workers at most --ssp-bound S pushes ahead of the slowest)",
        lambda s: FixedRate(s.lr, name="ssp"),
    ),
}


def make_policy(name: str, settings: PolicySettings) -> Policy:
    """The policy ``name`` with its parameters from ``settings``."""
    if name not in POLICIES:
        valid = ", ".join(entry.syntax for entry in POLICIES.values())
        raise ValueError(f"unknown policy {name!r}; valid: {valid}")
    return POLICIES[name].build(settings)
