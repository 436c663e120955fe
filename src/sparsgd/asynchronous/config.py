"""Every setting of an asynchronous run (real server or simulator), checked once, up front.

A bad value fails here, before any process starts, with the parameter, the value and the
reason. The settings are plain values; :mod:`sparsgd.asynchronous.build` turns them into the
objects both modes share.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sparsgd.asynchronous.policies import POLICIES, PolicySettings, make_policy
from sparsgd.asynchronous.server_state import MAX_PUSH
from sparsgd.asynchronous.speed import make_time_distribution, parse_slowdown
from sparsgd.compress.checks import check_density
from sparsgd.compress.memory import MEMORIES
from sparsgd.compress.registry import COMPRESSORS

__all__ = ["MODES", "STALL_PUSHES", "AsyncConfig"]

MODES = ("async", "sim")
_ASYNC, _SIM = ("async",), ("sim",)
# Refused pushes in a row (non-finite or too large, from any workers) after which the server
# ends the run: a few refusals happen when one worker spikes; twenty in a row with nothing
# applied between them means every worker has diverged and no further update can come.
STALL_PUSHES = 20  # ``modes`` of an option that applies to one mode only
# option group of ``sparsgd train --help`` (field metadata, read by sparsgd.cli.options); the
# settings shared with synchronous runs take their options from SyncConfig's fields
_GROUP = "asynchronous SGD (--mode async | sim, docs/async.md)"


def _option(
    default: Any,
    text: str,
    metavar: str | None = None,
    choices: tuple[str, ...] = (),
    modes: tuple[str, ...] = MODES,
) -> Any:
    """A field that is also a command-line option of the ``modes`` (``sparsgd train`` refuses
    it with any other ``--mode``)."""
    meta: dict[str, Any] = {"group": _GROUP, "help": text, "choices": choices, "modes": modes}
    if metavar is not None:
        meta["metavar"] = metavar
    return field(default=default, metadata=meta)


def _positive_int(value: Any, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


@dataclass(frozen=True)
class AsyncConfig:
    """Settings of one asynchronous run; see ``sparsgd train --help`` for each option."""

    mode: str = "sim"
    workers: int = 4
    steps: int = 200  # server updates (versions) to apply before the workers are stopped
    lr: float = 0.05
    batch_size: int = 32
    seed: int = 0
    compressor: str = "topk"
    compressor_settings: tuple[tuple[str, Any], ...] = ()  # e.g. (("threshold", 1e-3),)
    density: float = 0.01
    memory: str = "residual"
    memory_settings: tuple[tuple[str, Any], ...] = ()  # e.g. (("momentum", 0.9),) for dgc
    policy: str = _option(
        "vanilla", "server update rule", "NAME", tuple(e.syntax for e in POLICIES.values())
    )
    server_momentum: float = _option(
        0.0, "momentum at the server: u = MU u + eta(tau) d; x -= u", "MU"
    )
    damping_beta: float = _option(0.1, "dampening: eta exp(-BETA tau)", "BETA")
    dc_lambda: float = _option(0.04, "DC-ASGD lambda (lambda_0 with --dc-adaptive)", "L")
    dc_adaptive: bool = _option(False, "DC-ASGD-a: lambda / sqrt(mean square of the pushes)")
    ssp_bound: int | None = _option(
        None,
        "bounded staleness: a worker more than S pushes ahead of the slowest waits "
        "(with --policy ssp, or added to any policy)",
        "S",
    )
    slowdown: tuple[float, ...] | None = _option(
        None, "per-worker slow-down factors >= 1, one per worker, e.g. 1,1,2,4", "F,F,..."
    )
    delay: str | None = _option(None, "async: random sleep per step", "DIST", modes=_ASYNC)
    worker_time: str = _option(
        "constant:0.1",
        "sim: seconds per gradient of each simulated worker (same syntax as --delay)",
        "DIST",
        modes=_SIM,
    )
    staleness: str | None = _option(
        None, "sim: one worker, tau drawn per update", "DIST", modes=_SIM
    )
    network: str = _option(
        "1gbe",
        "sim clock: a preset or ALPHA,BETA (s per message, s per byte)",
        "NAME|A,B",
        modes=_SIM,
    )
    residual_dir: str | None = _option(
        None,
        "sim: keep every simulated worker's residual (memory 'residual') in one unlinked file "
        "in DIR instead of in memory: the same numbers, one read and one write of d floats "
        "per update (docs/async.md)",
        "DIR",
        modes=_SIM,
    )
    sparse_downlink: bool = _option(
        False, "pulls send only the entries changed since the worker's last copy"
    )
    max_push: float = _option(
        MAX_PUSH,
        "a push with an entry |c_i| above this is refused and counted (too_large); the "
        "default is far above any gradient and catches a diverged worker",
        "V",
    )
    stall_pushes: int = _option(
        STALL_PUSHES,
        "end the run after this many refused pushes in a row (non-finite or too large)",
        "N",
    )
    checkpoint_every: int = 0  # 0: only the one at the end
    log_every: int = 1
    eval_every: int = _option(
        0, "test-set evaluation every N updates (default 0: ten per run)", "N"
    )
    timeout_s: float = 300.0  # async: a silent peer, or no new version, ends the run
    tensorboard: bool = False  # also write DIR/tensorboard events (sparsgd.runs.tensorboard)
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in config.json only

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {self.mode!r}")
        for name in ("workers", "steps", "batch_size", "log_every", "stall_pushes"):
            _positive_int(getattr(self, name), name)
        for name in ("checkpoint_every", "eval_every"):
            _positive_int(getattr(self, name), name, minimum=0)
        check_density(self.density)
        if self.compressor not in COMPRESSORS:
            raise ValueError(
                f"unknown compressor {self.compressor!r}; valid: {sorted(COMPRESSORS)}"
            )
        if self.memory not in MEMORIES:
            raise ValueError(f"unknown memory {self.memory!r}; valid: {sorted(MEMORIES)}")
        self._check_policy()
        if not math.isfinite(self.max_push) or self.max_push <= 0:
            raise ValueError(f"max_push must be a finite number > 0; got {self.max_push}")
        if not math.isfinite(self.timeout_s) or self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be a finite number > 0; got {self.timeout_s}")
        if self.slowdown is not None:
            parse_slowdown(self.slowdown, self.workers)
        for name in ("delay", "worker_time"):
            spec = getattr(self, name)
            if spec is not None:
                make_time_distribution(spec)
        self._check_sim_specs()

    def _check_policy(self) -> None:
        # lr, beta, lambda, bound: each checked by PolicySettings; an unknown policy raises,
        # listing the policies, and ssp without a bound says so
        make_policy(self.policy, self.policy_settings())
        if not math.isfinite(self.server_momentum) or not 0 <= self.server_momentum < 1:
            raise ValueError(f"server_momentum must be in [0, 1); got {self.server_momentum}")

    def _check_sim_specs(self) -> None:
        """``staleness``, ``network`` and ``residual_dir`` belong to the simulator, which parses
        the first two and checks the directory itself (before the run folder is made)."""
        if self.mode != "sim" and self.staleness is not None:
            raise ValueError("--staleness draws tau in the simulator only; use --mode sim")
        if self.residual_dir is None:
            return
        if self.mode != "sim":
            raise ValueError("--residual-dir keeps simulated workers' residuals; use --mode sim")
        if not isinstance(self.residual_dir, str) or not self.residual_dir:
            raise ValueError(f"residual_dir must be a directory path; got {self.residual_dir!r}")
        if self.memory != "residual":
            raise ValueError(
                f"residual_dir keeps memory 'residual' in a file; got memory {self.memory!r} "
                "(use --memory residual, or leave --residual-dir out)"
            )

    def policy_settings(self) -> PolicySettings:
        return PolicySettings(
            lr=self.lr,
            damping_beta=self.damping_beta,
            dc_lambda=self.dc_lambda,
            dc_adaptive=self.dc_adaptive,
            ssp_bound=self.ssp_bound,
        )

    @property
    def slowdowns(self) -> tuple[float, ...]:
        return parse_slowdown(self.slowdown, self.workers)

    @property
    def eval_interval(self) -> int:
        return self.eval_every or max(1, self.steps // 10)

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready copy for ``config.json``."""
        record = asdict(self)
        record["memory_settings"] = dict(self.memory_settings)
        record["compressor_settings"] = dict(self.compressor_settings)
        record["slowdown"] = list(self.slowdowns)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AsyncConfig:
        """The config :meth:`to_record` wrote (other keys of ``config.json`` are ignored)."""
        values = {f.name: record[f.name] for f in fields(cls) if f.name in record}
        for name in ("memory_settings", "compressor_settings"):
            values[name] = tuple(sorted(dict(values.get(name) or {}).items()))
        if values.get("slowdown") is not None:
            values["slowdown"] = tuple(values["slowdown"])
        return cls(**values)
