"""What an experiment is: a name, a config in two sizes, and a function that runs it.

    exp = Experiment(
        name="gtopk-delta",
        summary="delta = ||x - gtopk(x)||^2 / ||x - randk(x)||^2 per iteration",
        full_minutes=20, estimate="estimated: ...",
        configure=delta_config,            # configure(smoke) -> the config dataclass
        execute=run_delta_experiment,      # execute(config, ctx) -> Outcome
    )

The config is a small dataclass whose fields are the study's knobs; ``configure(True)`` is
the smoke size (seconds, tiny data; used by the tests) and ``configure(False)`` the full size
(at most about an hour on 2 CPU cores). ``execute`` writes per-run folders and figures into
``ctx.out`` and returns an :class:`Outcome`; the runner (:mod:`sparsgd.experiments.runner`)
adds what ran, where and how long, and writes ``results.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsgd.report.results import Figure, Finding, Table

__all__ = ["Experiment", "Outcome", "RunContext"]


@dataclass(frozen=True)
class RunContext:
    """Where a run writes, which seeds it uses, the smoke size or not, where data lives."""

    out: Path
    seeds: tuple[int, ...]
    smoke: bool
    data_dir: str | None = None  # MNIST / Fashion-MNIST folder (None: $SPARSGD_DATA)
    reuse: bool = False  # S-SGD studies: read back runs finished before with the same config

    def run_dir(self, *parts: str) -> Path:
        """``out/runs/<parts...>`` (not created: the trainers create their own folders)."""
        return self.out.joinpath("runs", *parts)

    def figure_path(self, name: str) -> Path:
        """``out/<name>.png``."""
        return self.out / f"{name}.png"


@dataclass
class Outcome:
    """What ``execute`` hands back to the runner."""

    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """One of the papers' studies (see the module docstring)."""

    name: str
    title: str
    summary: str  # one line for `sparsgd experiment list`
    full_minutes: float  # running time of the full mode on 2 CPU cores
    estimate: str  # how full_minutes was obtained: "measured: ..." or "estimated: ..."
    default_seeds: int  # seeds of the full mode (smoke mode always runs one)
    configure: Callable[[bool], Any]
    execute: Callable[[Any, RunContext], Outcome]
