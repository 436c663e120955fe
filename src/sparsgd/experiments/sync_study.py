"""What the S-SGD studies share: running their cells, grouping them, tables and verdicts.

A study is a list of :class:`~sparsgd.experiments.sync_cells.SyncCell` (task x variant x
recipe x seed, the same seeds for every variant). They run through a
:class:`~sparsgd.experiments.cells.CellStore` in the study's folder, so an interrupted study
resumes and a finished one is re-reported without running anything. Results are grouped by
*arm* (task, variant, recipe), seeds in order.

A claim compares two arms of one cell seed by seed (:func:`sparsgd.report.stats.judge`): the
score of a run is its final test accuracy at the cap (chance, 1/K, for a run that diverged),
rule "not_worse" with a margin and a chance level. A smoke run judges nothing: its findings
are "inconclusive" and say why.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sparsgd.compress.checks import k_from_density
from sparsgd.experiments.cells import CellRate, CellStore
from sparsgd.experiments.spec import RunContext
from sparsgd.experiments.spread import mean_std, spread_text
from sparsgd.experiments.sync_cells import SyncCell, first_reaching, run_cell, score
from sparsgd.report.results import CELLS_PER_HOUR, Finding, Table
from sparsgd.report.stats import Verdict, combine, judge

__all__ = [
    "ARM_COLUMNS",
    "CHANCE_LEVEL",
    "MARGIN",
    "RULE",
    "Arm",
    "Judgement",
    "StudyRuns",
    "arm_table",
    "cross_check_table",
    "finding",
    "judge_arms",
    "outcome_data",
    "rate_note",
    "run_study",
    "verdict_table",
]

logger = logging.getLogger(__name__)

Arm = tuple[str, str, str]  # (task key, variant, recipe)
ARM_COLUMNS = [
    *("task", "variant", "recipe", "k", "final test accuracy (diverged: 1/K)"),
    "runs diverged or at chance",
    *("epochs to target (seeds that reached it)", "steps k/d to target", "steps k/d at cap"),
    *("bytes sent per rank", "traffic / dense", "modelled s at cap (1 GbE)"),
]
MARGIN = 0.01  # "not worse": at most 1 point of test accuracy below the baseline
CHANCE_LEVEL = 0.2  # MNIST: runs all at or below 20 % accuracy tell the methods nothing
RULE = (
    "paired by seed, score = final test accuracy at the cap (1/K for a run that diverged), "
    f"95% Student-t interval of the difference; not worse if its low end >= -{MARGIN:g}, "
    f"worse if its high end < -{MARGIN:g}, else inconclusive; cells at chance "
    f"(<= {CHANCE_LEVEL:g}) inconclusive; a claim agrees if all its cells agree"
)
SMOKE_EVIDENCE = "smoke run (tiny data, a few steps, one seed): not a result, no claim is judged"


@dataclass
class StudyRuns:
    """Every cell's result; the simulated cells grouped by arm, seeds in order."""

    cells: list[SyncCell]
    results: dict[str, dict[str, Any]]
    rate: CellRate | None = None
    arms: dict[Arm, list[SyncCell]] = field(init=False)

    def __post_init__(self) -> None:
        groups: dict[Arm, list[SyncCell]] = defaultdict(list)
        for c in sorted(self.cells, key=lambda c: c.seed):
            if c.engine == "sim":
                groups[(c.task.key, c.variant, c.arm_recipe)].append(c)
        self.arms = dict(groups)

    def arm(self, arm: Arm) -> list[dict[str, Any]]:
        """The results of ``arm``'s seeds, in seed order."""
        return [self.results[c.name] for c in self.arms[arm]]

    def seeds(self, arm: Arm) -> list[int]:
        return [c.seed for c in self.arms[arm]]


def run_study(cells: Sequence[SyncCell], ctx: RunContext, pool: int) -> StudyRuns:
    """Run (or read back) every cell in ``ctx.out/cells/`` with ``pool`` processes."""
    store = CellStore(ctx.out)
    run = functools.partial(run_cell, data_dir=ctx.data_dir)
    results = store.run_all([(c.name, c.spec()) for c in cells], run, workers=pool)
    return StudyRuns(list(cells), results, store.last_rate)


def scores(results: list[dict[str, Any]]) -> list[float]:
    """Each run's score (module docstring)."""
    classes = next((r["num_classes"] for r in results if r.get("num_classes")), None)
    chance = 1.0 / classes if classes else 0.0
    return [score(r, chance) for r in results]


def _mean(values: Sequence[Any]) -> float | None:
    return mean_std([v for v in values if v is not None])[0]


def _k(cell: SyncCell, numel: int | None) -> int | None:
    if numel is None:
        return None
    return numel if cell.method == "dense" else k_from_density(cell.density, numel)


def _to_target(cell: SyncCell, results: list[dict[str, Any]]) -> tuple[str, float | None]:
    """("2.33 (3 of 3)" or "never (0 of 3)", mean steps k/d at the target)."""
    if cell.task.target is None:
        return "no target", None
    hits = [h for h in (first_reaching(r, cell.task.target) for r in results) if h is not None]
    if not hits:
        return f"never (0 of {len(results)})", None
    epochs = _mean([h[0] for h in hits])
    return f"{epochs:.2f} ({len(hits)} of {len(results)})", _mean([h[1] for h in hits])


def arm_table(runs: StudyRuns, name: str, title: str, note: str) -> Table:
    """One row per arm: final accuracy over seeds, time to target, traffic, modelled time."""
    rows = []
    for arm, cells in runs.arms.items():
        results = runs.arm(arm)
        finals = [r["final"] for r in results]
        numel = next((r.get("numel") for r in results if r.get("numel")), None)
        bad = sum(1 for r in results if r["outcome"] != "ok")
        epochs, kd = _to_target(cells[0], results)
        sent = _mean([f.get("bytes_sent") for f in finals])
        dense = _mean([f.get("dense_bytes") for f in finals])
        rows.append(
            [
                *(cells[0].task.label, arm[1], arm[2], _k(cells[0], numel)),
                spread_text(scores(results)),
                f"{bad} of {len(results)}",
                epochs,
                kd,
                _mean([r["curves"]["steps_k_over_d"][-1] for r in results if r["curves"]["epoch"]]),
                sent,
                sent / dense if sent is not None and dense else None,
                _mean([f.get("modelled_seconds") for f in finals]),
            ]
        )
    return Table(name, title, list(ARM_COLUMNS), rows, note)


@dataclass(frozen=True)
class Judgement:
    """One claim cell: which arm against which, and the verdict."""

    label: str
    method: Arm
    baseline: Arm
    verdict: Verdict


def judge_arms(
    runs: StudyRuns, method: Arm, baseline: Arm, margin: float, chance_level: float
) -> Judgement:
    """``method`` against ``baseline``, paired by seed (the same seeds in both arms)."""
    if runs.seeds(method) != runs.seeds(baseline):
        raise ValueError(
            f"arms {method} and {baseline} must hold the same seeds to be paired; got "
            f"{runs.seeds(method)} and {runs.seeds(baseline)}"
        )
    verdict = judge(
        scores(runs.arm(method)),
        scores(runs.arm(baseline)),
        rule="not_worse",
        margin=margin,
        chance_level=chance_level,
    )
    label = f"{method[0]} {method[1]} ({method[2]}) vs {baseline[1]} ({baseline[2]})"
    return Judgement(label, method, baseline, verdict)


def verdict_table(name: str, title: str, judgements: list[Judgement], smoke: bool) -> Table:
    rows = [
        [j.label, "smoke run: not judged", "-"]
        if smoke
        else [j.label, j.verdict.text, j.verdict.word]
        for j in judgements
    ]
    return Table(name, title, ["claim cell", "paired difference and rule", "verdict"], rows)


def finding(
    claim: str, judgements: list[Judgement], rule: str, reduced: str, smoke: bool
) -> Finding:
    """One claim over its cells: :func:`~sparsgd.report.stats.combine` of their verdicts."""
    if smoke:
        return Finding(claim, "inconclusive", SMOKE_EVIDENCE, rule=rule, reduced=reduced)
    evidence = "; ".join(f"{j.label}: {j.verdict.word}, {j.verdict.text}" for j in judgements)
    return Finding(claim, combine([j.verdict for j in judgements]), evidence, rule, reduced)


def cross_check_table(runs: StudyRuns) -> Table | None:
    """Each real-engine cell beside its simulated twin (same config and seed)."""
    by_name = {c.name: c for c in runs.cells}
    rows = []
    for cell in runs.cells:
        twin = by_name.get(cell.name.removesuffix(f"-{cell.engine}"))
        if cell.engine == "sim" or twin is None:
            continue
        real, sim = runs.results[cell.name], runs.results[twin.name]
        for engine, r in (("real (P processes)", real), ("simulated ranks", sim)):
            f = r["final"]
            rows.append(
                [
                    twin.name,
                    engine,
                    r["outcome"],
                    f.get("test_accuracy"),
                    f.get("test_loss"),
                    f.get("bytes_sent"),
                ]
            )
    if not rows:
        return None
    return Table(
        "cross_check",
        "Cross-check: the same cell on the real engine and on simulated ranks",
        [
            "cell",
            "engine",
            "outcome",
            "final test accuracy",
            "final test loss",
            "bytes sent per rank",
        ],
        rows,
        "Same config and seed. The bytes must be equal; dense S-SGD's gloo all-reduce adds in "
        "another order than rank order, so its accuracy may differ in the last digits, and "
        "the difference can grow over a run.",
    )


def rate_note(runs: StudyRuns) -> str:
    """What this invocation ran, in how long: runs per hour (CellStore's rate)."""
    rate = runs.rate
    if rate is None or not rate.ran:
        return "Every cell was read back from cells/: nothing ran in this invocation."
    return (
        f"This invocation ran {rate.ran} cells ({rate.reused} read back from cells/) in "
        f"{rate.seconds:.0f} s with {rate.workers} process(es): {rate.per_hour:.1f} runs per hour."
    )


def outcome_data(runs: StudyRuns) -> dict[str, Any]:
    """``results.json``'s data: the cells' names and this invocation's runs per hour."""
    data: dict[str, Any] = {"cells": sorted(runs.results)}
    if runs.rate is not None:
        data[CELLS_PER_HOUR] = {**asdict(runs.rate), "per_hour": runs.rate.per_hour}
    return data
