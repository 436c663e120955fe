"""Run one experiment by name and write its ``results.json``.

    results = run_experiment("gtopk-delta", "out/delta", smoke=True)

(1) look the name up in the registry and build its config (smoke or full size);
(2) pick the seeds: ``seeds`` of them (0, 1, ...), or the experiment's default (one in smoke
    mode);
(3) run it into ``out`` (created; run folders inside are replaced, not appended to);
(4) add what ran, where and how long, and write ``out/results.json``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from pathlib import Path

from sparsgd.experiments.registry import get_experiment
from sparsgd.experiments.spec import RunContext
from sparsgd.report.machine import describe_machine
from sparsgd.report.results import Results

__all__ = ["run_experiment"]

logger = logging.getLogger(__name__)

REUSE_NOTE = (
    "Run with --reuse: training runs whose folder already held a finished run of the same "
    "config were read back, not run again; the minutes count this invocation only."
)


def _seeds(seeds: int | None, default: int, smoke: bool) -> tuple[int, ...]:
    if seeds is None:
        return (0,) if smoke else tuple(range(default))
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1; got {seeds!r}")
    return tuple(range(seeds))


def _load_notes(before: dict, after: dict) -> list[str]:
    """A warning when other work competed for the cores (load average above the cores)."""
    cores = before.get("cores") or 1
    loads = [m.get("load_average_1min") for m in (before, after)]
    if all(load is None or load <= cores for load in loads):
        return []
    return [
        f"The machine was shared: 1-minute load average {loads[0]} at the start and {loads[1]} "
        f"at the end on {cores} cores, so other processes competed for the cores and every "
        "time measured here is inflated by an unknown factor; counts, bytes and accuracies do "
        "not depend on it."
    ]


def run_experiment(
    name: str,
    out: str | Path,
    *,
    smoke: bool = False,
    seeds: int | None = None,
    data_dir: str | None = None,
    reuse: bool = False,
    command: str = "",
) -> Results:
    """Steps (1)-(4) of the module docstring; returns what was written."""
    experiment = get_experiment(name)  # (1)
    config = experiment.configure(smoke)
    chosen = _seeds(seeds, experiment.default_seeds, smoke)  # (2)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(out=folder, seeds=chosen, smoke=smoke, data_dir=data_dir, reuse=reuse)
    mode = "smoke" if smoke else "full"
    logger.info("experiment %s (%s mode, seeds %s) -> %s", name, mode, list(chosen), folder)
    machine = describe_machine()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    outcome = experiment.execute(config, ctx)  # (3)
    wall = time.perf_counter() - t0
    outcome.notes += _load_notes(machine, describe_machine())
    if reuse:
        outcome.notes.append(REUSE_NOTE)
    results = Results(  # (4)
        experiment=name,
        title=experiment.title,
        mode=mode,
        seeds=list(chosen),
        config={**(asdict(config) if is_dataclass(config) else dict(config)), "data_dir": data_dir},
        command=command,
        machine=machine,
        started=started,
        wall_seconds=wall,
        tables=outcome.tables,
        figures=outcome.figures,
        findings=outcome.findings,
        notes=outcome.notes,
        data=outcome.data,
    )
    results.save(folder)
    logger.info("experiment %s done in %.1f s: %s", name, wall, folder / "results.json")
    return results
