"""The parameter server's state and the whole of one push, shared by the server and simulator.

The server holds the flat model x (d,), its version t (the number of updates applied), the
policy's state and every worker's clock c_w. One push ``(c, t_w)`` from worker w, applied in
arrival order (docs/algorithms.md, staleness policies; :mod:`sparsgd.asynchronous.policies`):

    check c and t_w; refuse what is malformed, counted by reason    # (1) never applied
    tau = t - t_w                                                   # (2) staleness
    x_{t_w} = the copy w pulled (DC-ASGD only; x_t for a flush)     # (3)
    d = policy.direction(c, x_t, x_{t_w}) ;  eta = policy.rate(tau)  # (4)
    u = mu u + eta d ;  x <- x - u    (mu = 0: x <- x - eta d)      # (5) refused if not finite
    t <- t + 1 ;  last_changed[i] = t where the bits of x_i changed # (6)
    histogram[tau] += 1 ;  c_w += 1                                 # (7) statistics, SSP clock

A push is a :class:`~sparsgd.compress.message.SparseMessage`, or a (d,) float tensor: a
dense push, every entry in order (the simulator's dense pushes), taken as c without a
scatter. Each check reads the values once: one dot product c . c gives both "finite" (NaN
and Inf reach it) and an L >= the largest ``|c_i|``; only when it is not finite, or L is
above ``max_push``, does one ``aminmax`` decide per entry (NaN and Inf reach the minimum or
maximum). x after the step is proved finite by a bound on max |x_i| carried from step to
step with that L, without reading x, or else by a finite sum
(:mod:`sparsgd.asynchronous.server_finite`).

x is never written in place: each step makes a new tensor. A reference to x_t therefore
stays x_t while it is held: :meth:`ServerState.pull` hands out the server's tensor without a
copy, and DC-ASGD's x_{t_w} of every worker that pulled version t_w is that one tensor.

Refused: a push that is malformed (not a message, wrong length, indices out of range or not
ascending, NaN/Inf values), is absurdly large (an entry with ``|c_i| > max_push``; runs
built from a config use ``--max-push``, default :data:`MAX_PUSH`), claims a version from the
future, or differs from the version the server gave that worker. The numbers a worker reports
beside it (its loss and residual norm) must be finite, the norm >= 0
(:meth:`ServerState.check_report`). The real server and the simulator both call
:meth:`ServerState.push`, so the same (push, tau) gives the same update in both.

Bounded staleness (SSP, Ho et al., NIPS 2013) is the policy's ``bound`` S: worker w may pull
only while ``c_w - min over live workers v of c_v <= S``. Workers that died or finished leave
the minimum, so they cannot hold the others back forever; the largest gap granted is kept.

Sparse downlink: the server remembers for every coordinate the version that last changed its
bits, so "what changed since version v" is ``{i : last_changed[i] > v}``, exact and O(d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sparsgd.asynchronous.policies import Policy
from sparsgd.asynchronous.server_finite import StepBound, all_finite, max_abs_bound
from sparsgd.asynchronous.spec import check_nonneg
from sparsgd.compress.message import SparseMessage

__all__ = ["MAX_PUSH", "REJECT_REASONS", "Applied", "RejectedPush", "ServerState"]

# Default bound on one pushed entry |c_i|: gradients (with their error-feedback residual) of
# the bundled models stay below 1e3; six orders of magnitude above that is no gradient but a
# diverged or broken worker, and applying it would wreck x for every worker.
MAX_PUSH = 1e6

REJECT_REASONS = (
    "malformed",  # not a message, wrong length, bad indices, a broken header
    "non_finite",  # NaN / Inf in the values, loss or residual norm, or a step that overflows
    "too_large",  # an entry with |c_i| > max_push
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
    """Settings (policy, mu, workers), then x, t, u, pulls and clocks, then the statistics."""

    def __init__(
        self,
        x0: Tensor,
        policy: Policy,
        momentum: float = 0.0,
        track_changes: bool = False,
        workers: int = 1,
        max_push: float | None = None,
    ) -> None:
        if x0.dim() != 1 or not x0.is_floating_point() or x0.numel() == 0:
            raise ValueError(f"x0 must be a non-empty flat float tensor; got {tuple(x0.shape)}")
        self.momentum = check_nonneg(momentum, "server momentum")
        if self.momentum >= 1:
            raise ValueError(f"server momentum must be in [0, 1); got {momentum}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
        if max_push is not None and not (
            isinstance(max_push, (int, float)) and 0 < max_push < float("inf")
        ):
            raise ValueError(f"max_push must be a finite number > 0 or None; got {max_push!r}")
        self.policy, self.workers = policy, workers
        self.max_push = None if max_push is None else float(max_push)  # None: no bound
        self.x = x0.detach().clone()  # (d,), never written in place (module docstring)
        self.bound = StepBound(self.x)  # proves x finite after a plain step, unread
        self.version = 0
        self.u = torch.zeros_like(self.x) if self.momentum > 0 else None  # (d,) velocity
        # (d,) version that last changed each coordinate; -1: never changed
        self.last_changed = (
            torch.full_like(self.x, -1, dtype=torch.int64) if track_changes else None
        )
        self.pulled: dict[int, int] = {}  # worker -> version it was given
        self.pulled_models: dict[int, Tensor] = {}  # worker -> x_{t_w} (DC-ASGD only)
        self.clocks = [0] * workers  # c_w: pushes of worker w applied
        self.live = set(range(workers))  # workers that still take part (SSP's minimum)
        self.staleness: dict[int, int] = {}  # statistics: tau -> updates applied with it
        self.max_gap = 0  # largest c_w - min c_v at a granted pull
        self.applied = 0
        self.rejected = dict.fromkeys(REJECT_REASONS, 0)

    @property
    def numel(self) -> int:
        return self.x.numel()

    def push(
        self,
        message: SparseMessage | Tensor,
        version: int,
        worker: int | None = None,
        x_pulled: Tensor | None = None,
        flush: bool = False,
    ) -> Applied:
        """Steps (1)-(7) for one push; raises RejectedPush, counted, if it is refused.

        ``worker`` must have an outstanding :meth:`pull` of ``version`` (one push per pull),
        unless the caller vouches for the version: it passes ``x_pulled``, the model of
        ``version`` (the drawn-staleness simulator), or ``flush`` (the worker's residual at its
        end: no staleness counted, x_{t_w} = x_t, no clock tick).
        """
        vouched = flush or x_pulled is not None
        if worker is not None:
            self._known(worker)
        largest = self._check(message, version, None if vouched else worker)  # (1)
        tau = self.version - version  # (2)
        if flush:
            x_pulled = self.x  # (3)
        elif x_pulled is None and self.policy.needs_pulled_model and worker is not None:
            x_pulled = self.pulled_models.get(worker)
        c = (
            message.to(self.x.dtype)
            if isinstance(message, Tensor)
            else message.to_dense(self.x.dtype)
        )
        # direction() may move the policy's state (DC-ASGD's mean square): a refused push
        # must leave it as it was, or an overflowing c*c would stay in it for good
        policy_before = self.policy.state_dict() if self.policy.needs_pulled_model else None
        d, rate = self.policy.direction(c, self.x, x_pulled), self.policy.rate(tau)  # (4)
        x_new, u_new = self._step(d, rate)  # (5)
        bound = self.bound.after(rate, largest) if d is c and u_new is None else None
        if bound is None and not all_finite(x_new):
            if policy_before is not None:
                self.policy.load_state_dict(policy_before)
            raise self.reject("non_finite", f"the step of a push with tau={tau} overflows x")
        if self.last_changed is not None:  # (6)
            changed = x_new.view(torch.int32) != self.x.view(torch.int32)  # bit-level change
            self.last_changed[changed] = self.version + 1
        self.x, self.u, self.bound.value = x_new, u_new, bound
        self.version += 1
        self.applied += 1
        if not flush:  # (7)
            self.staleness[tau] = self.staleness.get(tau, 0) + 1
            if worker is not None:
                self.clocks[worker] += 1
        if worker is not None and not vouched:
            self.pulled.pop(worker, None)
            self.pulled_models.pop(worker, None)
        nnz = message.numel() if isinstance(message, Tensor) else message.nnz
        return Applied(self.version, tau, rate, nnz)

    def pull(self, worker: int) -> tuple[int, Tensor]:
        """``(t, x_t)`` for ``worker``; remembers t (and x_t when the policy needs it).

        x_t is the server's tensor itself, not a copy: no update writes into it (module
        docstring), so it stays x_t for as long as it is held. Do not write into it. The SSP
        rule must allow the pull (:meth:`may_pull`); the gap granted enters ``max_gap``.
        """
        if not self.may_pull(worker):
            raise RuntimeError(
                f"worker {worker} is {self.gap(worker)} pushes ahead; "
                f"the SSP bound is {self.policy.bound}"
            )
        self.max_gap = max(self.max_gap, self.gap(worker))
        self.pulled[worker] = self.version
        if self.policy.needs_pulled_model:
            self.pulled_models[worker] = self.x  # shared: one tensor per version held
        return self.version, self.x

    def gap(self, worker: int) -> int:
        """``c_w - min over live c_v`` (0 when ``worker`` is the only live one)."""
        mine = self.clocks[self._known(worker)]
        if len(self.live) == self.workers:  # every worker live: the minimum of the list
            return mine - min(self.clocks)
        return mine - min([self.clocks[v] for v in self.live] or [mine])

    def may_pull(self, worker: int) -> bool:
        """The SSP rule: may ``worker`` get the model now? (Always, without a bound.)"""
        bound = self.policy.bound
        return bound is None or self.gap(worker) <= bound

    def retire(self, worker: int) -> None:
        """``worker`` died or finished: it no longer holds the others back."""
        self.live.discard(self._known(worker))

    def changed_since(self, version: int) -> Tensor:
        """Ascending int64 indices of coordinates whose bits changed after ``version``."""
        if self.last_changed is None:
            raise RuntimeError("changed_since needs ServerState(track_changes=True)")
        return torch.nonzero(self.last_changed > version).flatten()

    def reject(self, reason: str, detail: str) -> RejectedPush:
        """Count a refusal and return the exception to raise."""
        self.rejected[reason] += 1
        return RejectedPush(reason, detail)

    def staleness_summary(self) -> dict[str, Any]:
        """``{"mean", "max", "count", "histogram": {"0": n0, ...}}`` of the applied taus."""
        n = sum(self.staleness.values())
        total = sum(t * c for t, c in self.staleness.items())
        return {
            "mean": total / n if n else 0.0,
            "max": max(self.staleness, default=0),
            "count": n,
            "histogram": {str(t): self.staleness[t] for t in sorted(self.staleness)},
        }

    def _known(self, worker: int) -> int:
        if (
            isinstance(worker, bool)
            or not isinstance(worker, int)
            or not 0 <= worker < self.workers
        ):
            raise ValueError(f"worker must be in [0, {self.workers}); got {worker!r}")
        return worker

    def _check(self, msg: Any, version: Any, worker: int | None) -> float:
        """Step (1); returns L >= the largest ``|c_i|`` (server_finite (4); 0 for no values)."""
        dense = isinstance(msg, Tensor)
        if dense and (msg.shape != (self.numel,) or not msg.is_floating_point()):
            raise self.reject(
                "malformed",
                f"a dense push must be a float tensor of shape ({self.numel},); got "
                f"{tuple(msg.shape)} {msg.dtype}",
            )
        if not dense and (not isinstance(msg, SparseMessage) or msg.numel != self.numel):
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
        idx = None if dense else msg.indices.long()
        if (
            idx is not None
            and idx.numel()
            and (int(idx[0]) < 0 or int(idx[-1]) >= self.numel or bool((idx[1:] <= idx[:-1]).any()))
        ):
            raise self.reject(
                "malformed", f"indices must be ascending, distinct, in [0, {self.numel})"
            )
        values = msg if dense else msg.values
        if values.numel() == 0:
            return 0.0
        bound = max_abs_bound(values)  # >= every |c_i|; finite only if they all are
        if math.isfinite(bound) and (self.max_push is None or bound <= self.max_push):
            return bound  # the step bound's L (server_finite (4)): no entry is refused
        lo, hi = (float(v) for v in torch.aminmax(values))  # NaN anywhere: both NaN
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise self.reject("non_finite", "values hold NaN or Inf")
        largest = max(-lo, hi)
        if self.max_push is not None and largest > self.max_push:
            raise self.reject(
                "too_large", f"an entry of magnitude {largest:.3g} > max_push {self.max_push:g}"
            )
        return largest

    def check_report(self, loss: Any, residual_norm: Any) -> None:
        """Step (1) for the numbers beside a push: a finite loss, a finite norm >= 0."""
        for name, value in (("loss", loss), ("residual norm", residual_norm)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.reject("malformed", f"{name} must be a number; got {value!r}")
            if not math.isfinite(value):
                raise self.reject("non_finite", f"{name} is {value}")
        if residual_norm < 0:
            raise self.reject("malformed", f"residual norm must be >= 0; got {residual_norm}")

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
            "clocks": list(self.clocks),
            "staleness": [[t, c] for t, c in sorted(self.staleness.items())],
            "max_gap": self.max_gap,
            "applied": self.applied,
            "rejected": dict(self.rejected),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["x"].shape != self.x.shape:
            raise ValueError(
                f"checkpoint x has shape {tuple(state['x'].shape)}; model has {self.numel}"
            )
        self.x = state["x"].clone()
        self.bound = StepBound(self.x)
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
        if len(state["clocks"]) != self.workers:
            raise ValueError(
                f"checkpoint has clocks of {len(state['clocks'])} workers; run has {self.workers}"
            )
        self.clocks = [int(c) for c in state["clocks"]]
        self.staleness = {int(t): int(c) for t, c in state["staleness"]}
        self.max_gap = int(state["max_gap"])
        self.applied = int(state["applied"])
        self.rejected = {**dict.fromkeys(REJECT_REASONS, 0), **state["rejected"]}
