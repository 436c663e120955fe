"""The ``gtopk-delta`` verdict: is a run's delta below 1, over seeds, with a 95 % t interval?

For one run (network, P, method, recipe) trained with seeds s = 1..n:

    (1) m_s  = mean of delta_t over every iteration t of seed s's run
    (2) mean = (1/n) sum m_s;  CI = mean -/+ t_{0.975, n-1} std(m) / sqrt(n)
        (:func:`sparsgd.report.stats.paired_diff` of m against the bound 1, shifted back by 1)
    (3) agrees        if CI high <  1      (delta is below 1, confidently)
        disagrees     if CI low  >= 1      (it is at or above 1, confidently)
        inconclusive  otherwise
    (4) a run with a seed whose final test accuracy is at or below ``chance_level`` is
        inconclusive whatever (3) says: the delta of a run that does not train (or diverged)
        says nothing about training
    (5) n < 2 gives no interval: inconclusive
"""

from __future__ import annotations

from collections.abc import Sequence

from sparsgd.report.stats import LEVEL, Verdict, paired_diff

__all__ = ["BOUND", "RULE", "judge_below_one"]

BOUND = 1.0  # E||x - randk(x)||^2 in units of itself: random-k's delta
RULE = (
    "per seed, the mean delta over every iteration; 95% Student-t interval over seeds; agrees "
    "if its high end < 1, disagrees if its low end >= 1, else inconclusive; a run with a seed "
    "at or below the chance level (final test accuracy) inconclusive"
)


def judge_below_one(
    means: Sequence[float | None],
    accuracies: Sequence[float | None],
    chance_level: float,
    level: float = LEVEL,
) -> Verdict:
    """Steps (1)-(5) of the module docstring; ``means`` and ``accuracies`` one per seed."""
    if len(means) != len(accuracies):
        raise ValueError(
            f"means and accuracies need one value per seed; got {len(means)} and {len(accuracies)}"
        )
    at_chance = [i for i, a in enumerate(accuracies) if a is None or a <= chance_level]
    if at_chance:  # (4)
        shown = ", ".join(
            "diverged" if accuracies[i] is None else f"{accuracies[i]:.3f}" for i in at_chance
        )
        return Verdict(
            "inconclusive",
            None,
            f"{len(at_chance)} of {len(means)} seeds at or below the chance level "
            f"{chance_level:g} (final test accuracy {shown}): not a training run",
        )
    diff = paired_diff(means, [BOUND] * len(means), level)  # (2)
    if diff is None:  # (5)
        return Verdict("inconclusive", None, "fewer than 2 seeds: no interval")
    mean, low, high = diff.mean + BOUND, diff.low + BOUND, diff.high + BOUND
    word = "agrees" if high < BOUND else "disagrees" if low >= BOUND else "inconclusive"  # (3)
    pct = round(diff.level * 100)
    return Verdict(
        word,
        diff,
        f"mean delta {mean:.4f} [{low:.4f}, {high:.4f}] ({pct}% t, n={diff.n}); agrees if the "
        f"high end < {BOUND:g}, disagrees if the low end >= {BOUND:g}",
    )
