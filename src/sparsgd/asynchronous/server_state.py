"""The parameter server's state and its one update rule, shared by the server and the simulator.

The server holds the flat model x (d,), its version t (the number of updates applied) and the
policy's state. A push ``(c, t_w)`` is checked, then applied in arrival order (docs/algorithms.md
section 4, policies in :mod:`sparsgd.asynchronous.policies`):

    tau = t - t_w                                  # (1) staleness; t_w > t is refused
    d   = policy.direction(c, x_t, x_{t_w})        # (2) c, or DC-ASGD's compensated c
    u   = mu u + eta(tau) d ;  x <- x - u          # (3) server momentum mu (mu = 0: x -= eta d)
    t  <- t + 1                                    # (4)

A push that is malformed (wrong length, indices out of range or not ascending, NaN/Inf
values), claims a version from the future, or differs from the version the server gave that
worker is refused with :class:`RejectedPush`, counted by reason, and never applied. The real
server (:mod:`sparsgd.asynchronous.server`) and the simulator (:mod:`sparsgd.sim`) both call
:meth:`ServerState.apply_push`, so the same (push, tau) gives the same update in both.

Sparse downlink: the server remembers for every coordinate the version that last changed its
bits, so "what changed since version v" is ``{i : last_changed[i] > v}``, exact and O(d).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sparsgd.asynchronous.policies import Policy
from sparsgd.asynchronous.spec import check_nonneg
from sparsgd.asynchronous.staleness_stats import StalenessStats
from sparsgd.compress.message import SparseMessage

__all__ = ["REJECT_REASONS", "Applied", "RejectedPush", "ServerState"]

REJECT_REASONS = (
    "malformed",  # not a message, wrong length, bad indices, a broken header
    "non_finite",  # NaN / Inf in the values, or a step that overflows
    "future_version",  # t_w > t
    "version_mismatch",  # t_w is not the version this worker pulled (or it pulled nothing)
)


class RejectedPush(ValueError):
    """A push the server refused; ``reason`` is one of :data:`REJECT_REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"push rejected ({reason}): {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Applied:
    """What one applied push did."""

    version: int  # t after the update
    tau: int  # staleness of the push
    rate: float  # eta(tau)
    nnz: int  # entries the push carried


class ServerState:
    """x, t, momentum u, the policy, what each worker pulled, and the counters."""

    def __init__(
        self, x0: Tensor, policy: Policy, momentum: float = 0.0, track_changes: bool = False
    ) -> None:
        if x0.dim() != 1 or not x0.is_floating_point() or x0.numel() == 0:
            raise ValueError(f"x0 must be a non-empty flat float tensor; got {tuple(x0.shape)}")
        self.momentum = check_nonneg(momentum, "server momentum")
        if self.momentum >= 1:
            raise ValueError(f"server momentum must be in [0, 1); got {momentum}")
        self.x = x0.detach().clone()  # (d,)
        self.policy = policy
        self.version = 0
        self.u = torch.zeros_like(self.x) if self.momentum > 0 else None  # (d,) velocity
        # (d,) version that last changed each coordinate; -1: never changed
        self.last_changed = (
            torch.full_like(self.x, -1, dtype=torch.int64) if track_changes else None
        )
        self.pulled: dict[int, int] = {}  # worker -> version it was given
        self.pulled_models: dict[int, Tensor] = {}  # worker -> x_{t_w} (DC-ASGD only)
        self.staleness = StalenessStats()
        self.applied = 0
        self.rejected = dict.fromkeys(REJECT_REASONS, 0)

    @property
    def numel(self) -> int:
        return self.x.numel()

    def pull(self, worker: int) -> tuple[int, Tensor]:
        """``(t, copy of x_t)`` for ``worker``; remembers t (and x_t when the policy needs it)."""
        self.pulled[worker] = self.version
        if self.policy.needs_pulled_model:
            self.pulled_models[worker] = self.x.clone()
        return self.version, self.x.clone()

    def changed_since(self, version: int) -> Tensor:
        """Ascending int64 indices of coordinates whose bits changed after ``version``."""
        if self.last_changed is None:
            raise RuntimeError("changed_since needs ServerState(track_changes=True)")
        return torch.nonzero(self.last_changed > version).flatten()

    def reject(self, reason: str, detail: str) -> RejectedPush:
        """Count a refusal and return the exception to raise."""
        self.rejected[reason] += 1
        return RejectedPush(reason, detail)

    def _check(self, msg: Any, version: Any, worker: int | None) -> None:
        if not isinstance(msg, SparseMessage) or msg.numel != self.numel:
            got = msg.numel if isinstance(msg, SparseMessage) else type(msg).__name__
            raise self.reject(
                "malformed", f"expected a SparseMessage of numel {self.numel}; got {got}"
            )
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise self.reject("malformed", f"version must be an integer >= 0; got {version!r}")
        if version > self.version:
            raise self.reject(
                "future_version", f"version {version} > server version {self.version}"
            )
        if worker is not None and self.pulled.get(worker) != version:
            pulled = self.pulled.get(worker, "nothing (no outstanding pull: a repeated push?)")
            raise self.reject(
                "version_mismatch", f"worker {worker} pulled {pulled}, pushed {version}"
            )
        idx = msg.indices.long()
        if idx.numel() and (
            int(idx[0]) < 0 or int(idx[-1]) >= self.numel or bool((idx[1:] <= idx[:-1]).any())
        ):
            raise self.reject(
                "malformed", f"indices must be ascending, distinct, in [0, {self.numel})"
            )
        if not bool(torch.isfinite(msg.values).all()):
            raise self.reject("non_finite", "values hold NaN or Inf")

    def apply_push(
        self,
        msg: SparseMessage,
        version: int,
        worker: int | None = None,
        x_pulled: Tensor | None = None,
        count_staleness: bool = True,
    ) -> Applied:
        """Check and apply one push (steps (1)-(4)); raises RejectedPush, counted, if refused.

        ``worker``: the pusher, who must have an outstanding :meth:`pull` of ``version``
        (one push per pull); ``None`` when the caller vouches for the version itself (a
        flush, the drawn-staleness simulator). ``x_pulled``: the model of ``version``; by
        default the copy :meth:`pull` kept for ``worker`` (only DC-ASGD reads it).
        ``count_staleness=False`` keeps tau out of the statistics (a flush: its version is
        the worker's last pull, not the model its residual was computed on).
        """
        self._check(msg, version, worker)
        tau = self.version - version  # (1)
        if x_pulled is None and self.policy.needs_pulled_model:
            x_pulled = self.pulled_models.get(worker) if worker is not None else None
        c = msg.to_dense(self.x.dtype)
        # direction() may move the policy's state (DC-ASGD's mean square): a refused push
        # must leave it as it was, or an overflowing c*c would stay in it for good
        policy_before = self.policy.state_dict() if self.policy.needs_pulled_model else None
        d = self.policy.direction(c, self.x, x_pulled)  # (2)
        rate = self.policy.rate(tau)
        x_new, u_new = self._step(d, rate)  # (3)
        if not bool(torch.isfinite(x_new).all()):
            if policy_before is not None:
                self.policy.load_state_dict(policy_before)
            raise self.reject("non_finite", f"the step of a push with tau={tau} overflows x")
        if self.last_changed is not None:
            changed = x_new.view(torch.int32) != self.x.view(torch.int32)  # bit-level change
            self.last_changed[changed] = self.version + 1
        self.x, self.u = x_new, u_new
        self.version += 1  # (4)
        self.applied += 1
        if count_staleness:
            self.staleness.add(tau)
        if worker is not None:
            self.pulled.pop(worker, None)
            self.pulled_models.pop(worker, None)
        return Applied(self.version, tau, rate, msg.nnz)

    def _step(self, d: Tensor, rate: float) -> tuple[Tensor, Tensor | None]:
        """New ``(x, u)`` of step (3), without touching the current ones.

        Without momentum ``x.add(d, alpha=-rate)`` is the very operation of
        ``torch.optim.SGD``, so staleness 0 reproduces plain SGD bit for bit.
        """
        if self.u is None:
            return self.x.add(d, alpha=-rate), None
        u_new = self.u.mul(self.momentum).add_(d, alpha=rate)
        return self.x.sub(u_new), u_new

    def state_dict(self) -> dict[str, Any]:
        return {
            "x": self.x.clone(),
            "version": self.version,
            "u": None if self.u is None else self.u.clone(),
            "last_changed": None if self.last_changed is None else self.last_changed.clone(),
            "pulled": [[w, v] for w, v in sorted(self.pulled.items())],
            "pulled_models": {str(w): m.clone() for w, m in self.pulled_models.items()},
            "policy": self.policy.state_dict(),
            "staleness": self.staleness.state_dict(),
            "applied": self.applied,
            "rejected": dict(self.rejected),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["x"].shape != self.x.shape:
            raise ValueError(
                f"checkpoint x has shape {tuple(state['x'].shape)}; model has {self.numel}"
            )
        self.x = state["x"].clone()
        self.version = int(state["version"])
        if (state["u"] is None) != (self.u is None):
            raise ValueError("checkpoint and run disagree on server momentum (on / off)")
        self.u = None if state["u"] is None else state["u"].clone()
        if self.last_changed is not None:
            saved = state["last_changed"]
            self.last_changed = (
                saved.clone()
                if saved is not None
                else torch.full_like(self.last_changed, self.version)
            )
        self.pulled = {int(w): int(v) for w, v in state["pulled"]}
        self.pulled_models = {int(w): m.clone() for w, m in state["pulled_models"].items()}
        self.policy.load_state_dict(state["policy"])
        self.staleness.load_state_dict(state["staleness"])
        self.applied = int(state["applied"])
        self.rejected = {**dict.fromkeys(REJECT_REASONS, 0), **state["rejected"]}
