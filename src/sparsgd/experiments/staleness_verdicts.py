"""The ``staleness`` study's choices and verdicts: best learning rate, best counter-measure, claims.

Runs are keyed ``(S, method, lr)``, each a list of cell results in seed order (the same seeds
for every key, so position s pairs runs of the same initial model and data order). Then:

    (1) lr*(S, m)     = the grid lr with the highest mean held-out accuracy over seeds (ties:
                        the smaller lr); the test set is never read for a choice
    (2) counter*(S)   = the counter-measure whose mean held-out accuracy at its own lr* is the
                        highest (ties: the first in the study's order)
    (3) later version "Top-k with memory is not worse than vanilla ASGD": judge(topk, vanilla,
                      rule "not_worse", margin MARGIN) on test accuracy at each one's lr*
    (4) v1            "Top-k with memory is better than vanilla ASGD and than the best
                      counter-measure": judge(topk, vanilla, "better") and judge(topk,
                      counter*, "better"); the cell agrees if both agree, disagrees if either
                      disagrees, and is inconclusive otherwise
    (5) both rules get chance_level = CHANCE_FACTOR / classes: a cell where every compared run
        stayed at or below it is inconclusive (sparsgd.report.stats step (5))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sparsgd.report.stats import Verdict, judge

__all__ = [
    "CHANCE_FACTOR",
    "COUNTERS",
    "MARGIN",
    "SPARSE",
    "VANILLA",
    "CellVerdicts",
    "best_counter",
    "cell_verdicts",
    "choose_lr",
    "mean_of",
]

MARGIN = 0.01  # "negligible": at most one point of test accuracy lost against vanilla
CHANCE_FACTOR = 2.0  # below twice chance accuracy a model has learned next to nothing
VANILLA = "vanilla"
SPARSE = "topk-0.01"  # Top-k at density 0.01 with residual memory
COUNTERS = ("staleness-aware", "dampening", "dc-asgd")

Runs = dict[tuple[int, str, float], list[dict[str, Any]]]


def mean_of(runs: list[dict[str, Any]], key: str) -> float:
    return sum(r[key] for r in runs) / len(runs)


def choose_lr(runs: Runs, s: int, method: str, lrs: Sequence[float]) -> float | None:
    """(1): lr*(s, method) among the grid values that ran; None when none did."""
    best, best_score = None, None
    for lr in sorted(lrs):
        cell = runs.get((s, method, lr))
        if not cell:
            continue
        score = mean_of(cell, "valid_accuracy")
        if best_score is None or score > best_score:
            best, best_score = lr, score
    return best


def best_counter(
    runs: Runs, s: int, lrs: Sequence[float], counters: Sequence[str] = COUNTERS
) -> tuple[str, float] | None:
    """(2): (counter-measure, its lr*) with the highest held-out accuracy; None if none ran."""
    best, best_score = None, None
    for m in counters:
        lr = choose_lr(runs, s, m, lrs)
        if lr is None:
            continue
        score = mean_of(runs[(s, m, lr)], "valid_accuracy")
        if best_score is None or score > best_score:
            best, best_score = (m, lr), score
    return best


@dataclass(frozen=True)
class CellVerdicts:
    """Steps (1)-(5) for one stale cell S."""

    s: int
    vanilla_lr: float
    sparse_lr: float
    counter: tuple[str, float]
    later: Verdict  # (3)
    v1: Verdict  # (4), from the two below
    v1_vanilla: Verdict
    v1_counter: Verdict


def _tests(runs: Runs, s: int, method: str, lr: float) -> list[float]:
    return [r["test_accuracy"] for r in runs[(s, method, lr)]]


def _both(a: Verdict, b: Verdict) -> Verdict:
    """(4): the conjunction of two verdicts on one cell."""
    words = {a.word, b.word}
    word = (
        "agrees" if words == {"agrees"} else "disagrees" if "disagrees" in words else "inconclusive"
    )
    return Verdict(word, None, f"vs vanilla: {a.word}, {a.text}; vs counter: {b.word}, {b.text}")


def cell_verdicts(runs: Runs, s: int, lrs: Sequence[float], classes: int) -> CellVerdicts | None:
    """Steps (1)-(5) for stale cell ``s``; None when vanilla, Top-k or every counter is missing."""
    vanilla_lr = choose_lr(runs, s, VANILLA, lrs)
    sparse_lr = choose_lr(runs, s, SPARSE, lrs)
    counter = best_counter(runs, s, lrs)
    if vanilla_lr is None or sparse_lr is None or counter is None:
        return None
    chance_level = CHANCE_FACTOR / classes  # (5)
    sparse = _tests(runs, s, SPARSE, sparse_lr)
    vanilla = _tests(runs, s, VANILLA, vanilla_lr)
    rival = _tests(runs, s, *counter)
    later = judge(sparse, vanilla, rule="not_worse", margin=MARGIN, chance_level=chance_level)
    v1_vanilla = judge(sparse, vanilla, rule="better", chance_level=chance_level)
    v1_counter = judge(sparse, rival, rule="better", chance_level=chance_level)
    return CellVerdicts(
        s,
        vanilla_lr,
        sparse_lr,
        counter,
        later,
        _both(v1_vanilla, v1_counter),
        v1_vanilla,
        v1_counter,
    )
