"""Verdicts from paired differences over seeds, with a confidence interval and the rule printed.

A claim compares a method with a baseline in one cell (network, setting), both run with the
same seeds s = 1..n (same initial model and data order). With m_s and b_s their scores
(higher is better; pass ``-perplexity`` for perplexities):

    (1) d_s  = m_s - b_s                               paired difference of seed s
    (2) mean = (1/n) sum d_s,   se = std(d) / sqrt(n)  (sample std, n - 1 degrees of freedom)
    (3) CI   = mean -/+ t_{(1+level)/2, n-1} * se      Student's t interval, level 0.95
    (4) rule "not worse by more than margin":
            agrees        if CI low  >= -margin        (the method loses at most margin)
            disagrees     if CI high <  -margin        (it loses more than margin, confidently)
            inconclusive  otherwise                    (the interval straddles -margin)
        rule "better":
            agrees if CI low > 0, disagrees if CI high < 0, inconclusive otherwise
    (5) a cell where every run of both arms stayed at chance (score <= chance_level) is
        inconclusive whatever (4) says: it cannot tell the methods apart
    (6) n < 2 gives no interval: inconclusive

Every verdict carries its own sentence (:attr:`Verdict.text`) with the numbers and the rule,
so a report prints the rule beside the verdict instead of a bare word.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as _scipy_stats

__all__ = ["LEVEL", "PairedDiff", "Verdict", "combine", "judge", "paired_diff"]

LEVEL = 0.95  # two-sided confidence level of every interval
RULES = ("not_worse", "better")


@dataclass(frozen=True)
class PairedDiff:
    """(1)-(3): the mean paired difference and its confidence interval."""

    n: int
    mean: float
    low: float
    high: float
    level: float = LEVEL

    def text(self, digits: int = 3) -> str:
        pct = round(self.level * 100)
        return (
            f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}] "
            f"({pct}% t, n={self.n})"
        )


@dataclass(frozen=True)
class Verdict:
    """(4)-(6): the word, the interval it came from, and the sentence with the rule."""

    word: str  # "agrees" | "disagrees" | "inconclusive"
    diff: PairedDiff | None
    text: str


def paired_diff(method: Sequence[float], baseline: Sequence[float], level: float = LEVEL):
    """(1)-(3) over seeds paired by position; None when fewer than two pairs are finite."""
    if len(method) != len(baseline):
        raise ValueError(
            f"paired scores need one baseline per method score; got {len(method)} and "
            f"{len(baseline)}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")
    diffs = [
        float(m) - float(b)
        for m, b in zip(method, baseline, strict=True)
        if m is not None and b is not None and math.isfinite(m) and math.isfinite(b)
    ]
    n = len(diffs)
    if n < 2:
        return None
    mean = sum(diffs) / n
    std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = float(_scipy_stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    return PairedDiff(n=n, mean=mean, low=mean - half, high=mean + half, level=level)


def judge(
    method: Sequence[float],
    baseline: Sequence[float],
    *,
    rule: str = "not_worse",
    margin: float = 0.0,
    chance_level: float | None = None,
    level: float = LEVEL,
) -> Verdict:
    """Steps (1)-(6) for one cell."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}; got {rule!r}")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0; got {margin}")
    diff = paired_diff(method, baseline, level)
    if rule == "not_worse":
        rule_text = (
            f"agrees if the CI's low end >= -{margin:g}, disagrees if its high end < -{margin:g}"
        )
    else:
        rule_text = "agrees if the CI lies above 0, disagrees if below 0"
    if chance_level is not None:
        scores = [v for v in (*method, *baseline) if v is not None and math.isfinite(v)]
        if scores and max(scores) <= chance_level:  # (5)
            return Verdict(
                "inconclusive", diff, f"every run stayed at chance (<= {chance_level:g})"
            )
    if diff is None:  # (6)
        return Verdict("inconclusive", None, "fewer than 2 paired seeds: no interval")
    if rule == "not_worse":
        word = "agrees" if diff.low >= -margin else "disagrees" if diff.high < -margin else None
    else:
        word = "agrees" if diff.low > 0 else "disagrees" if diff.high < 0 else None
    return Verdict(word or "inconclusive", diff, f"difference {diff.text()}; {rule_text}")


def combine(verdicts: Sequence[Verdict]) -> str:
    """One word for a claim judged cell by cell: ``agrees`` if every cell agrees;
    ``disagrees`` if none agrees and at least one disagrees; ``inconclusive`` if every cell is
    (or there are none); ``partly agrees`` otherwise (some agree, the others do not)."""
    words = [v.word for v in verdicts]
    if words and all(w == "agrees" for w in words):
        return "agrees"
    if "agrees" not in words:
        return "disagrees" if "disagrees" in words else "inconclusive"
    return "partly agrees"
