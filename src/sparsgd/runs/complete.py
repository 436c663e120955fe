"""The last word on a run: add the total time and the outcome to its ``summary.json``.

The process that writes ``summary.json`` first (rank 0 of a synchronous run, the parameter
server, the simulator) knows how long it trained (``train_seconds``) but not how long the whole
command took: starting processes, loading data and the final evaluation happen partly
elsewhere. The entry point that started the run (``sync.train``, ``run_async``,
``run_simulation``) calls :func:`complete_summary` once everything has ended:

    started = time.perf_counter()            # first thing in the entry point
    ...                                      # check, launch, train, evaluate, write summary.json
    summary = complete_summary(out, started)

which sets

    total_seconds   seconds from ``started`` to now (config checks, data loading, process start,
                    training, evaluation, checkpoints); for a resumed run, the resumed part only
    outcome         "ok" | "diverged" | "chance", by :func:`sparsgd.runs.outcome.judge`
    outcome_reason  the numbers behind it, e.g. "test loss 1576 > 23.03 = 10 x ln 10"

and rewrites the file atomically. :func:`closing_lines` are the last lines ``sparsgd train``
prints, the same numbers with their labels:

    time: 12.3 s training, 24.7 s in all (with start-up, data loading and evaluation)
    outcome: ok (test accuracy 93.10%, chance is 10.00%)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sparsgd.runs.outcome import judge, with_outcome
from sparsgd.runs.run_dir import RunDir

__all__ = ["closing_lines", "complete_summary", "completed"]


def completed(summary: dict[str, Any], started: float) -> dict[str, Any]:
    """A copy of ``summary`` with ``total_seconds`` (since ``started``, a
    ``time.perf_counter()`` value) and the outcome; for runs without a folder."""
    return with_outcome({**summary, "total_seconds": time.perf_counter() - started})


def complete_summary(out: str | Path, started: float) -> dict[str, Any]:
    """:func:`completed` applied to ``out/summary.json``, rewritten; returns the summary."""
    run = RunDir(out, resume=True)
    summary = completed(run.read_summary(), started)
    run.write_summary(summary)
    return summary


def closing_lines(summary: dict[str, Any]) -> list[str]:
    """The time line and the outcome line of a completed summary (see the module docstring)."""
    time_line = (
        f"time: {summary['train_seconds']:.1f} s training, {summary['total_seconds']:.1f} s in "
        "all (with start-up, data loading and evaluation)"
    )
    return [time_line, judge(summary).line()]
