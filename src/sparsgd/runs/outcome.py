"""Did the run learn? One rule for every mode (sync, async, sim), read off ``summary.json``.

K is the number of outputs the model chooses among: ``num_classes`` for a classifier,
``vocab_size`` for a language model. A uniform guess over K outputs has test loss ln K.

    (1) diverged  the final test loss is non-finite, or above EXPLODED_FACTOR * ln K, or more
                  than SKIPPED_SHARE of the steps had a non-finite gradient and were skipped
    (2) chance    classification: final test accuracy below 1/K + CHANCE_MARGIN;
                  language: final test perplexity at or above ``unigram_perplexity`` (only when
                  the summary carries that number; otherwise only rule (1) applies)
    (3) ok        neither

A summary without K (an old run) is judged by the non-finite and skipped-step parts of (1).
A run with no final evaluation at all is "ok" as far as this rule can tell, and says so.

    outcome = judge(summary)
    outcome.label                       # "ok" | "diverged" | "chance"
    outcome.line()                      # "outcome: diverged (test loss 1576 > 23.03 = 10 x ln 10)"
    summary = with_outcome(summary)     # adds "outcome" and "outcome_reason"
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHANCE_MARGIN",
    "EXPLODED_FACTOR",
    "OUTCOMES",
    "SKIPPED_SHARE",
    "Outcome",
    "judge",
    "with_outcome",
]

OUTCOMES = ("ok", "diverged", "chance")
# A trained model's test loss stays within a few multiples of ln K even when it overfits;
# ten times the uniform guess means the weights blew up.
EXPLODED_FACTOR = 10.0
# Accuracy this close to 1/K is what a model that predicts one class (or noise) gets on a
# balanced test set of a few hundred samples; 0.05 is 5 points of accuracy.
CHANCE_MARGIN = 0.05
# More than half of the steps skipped for a non-finite gradient: the run mostly did nothing.
SKIPPED_SHARE = 0.5


@dataclass(frozen=True)
class Outcome:
    """The verdict on one run: ``label`` in :data:`OUTCOMES` and the numbers behind it."""

    label: str
    reason: str

    def line(self) -> str:
        return f"outcome: {self.label} ({self.reason})"


def _outputs(summary: dict[str, Any]) -> int | None:
    """K: classes of a classifier, words of a language model, or None when not recorded."""
    k = summary.get("num_classes") or summary.get("vocab_size")
    return int(k) if k else None


def _skipped(summary: dict[str, Any]) -> int:
    return int(summary.get("skipped_nonfinite_steps") or summary.get("skipped_nonfinite") or 0)


def _diverged(summary: dict[str, Any], k: int | None) -> str | None:
    """Rule (1): the reason the run diverged, or None."""
    loss = summary.get("final_test_loss")
    if loss is not None and not math.isfinite(float(loss)):
        return f"test loss {loss} is not finite"
    if loss is not None and k is not None and k > 1:
        limit = EXPLODED_FACTOR * math.log(k)
        if loss > limit:
            return f"test loss {loss:.4g} > {limit:.4g} = {EXPLODED_FACTOR:g} x ln {k}"
    steps, skipped = int(summary.get("steps") or 0), _skipped(summary)
    if steps and skipped > SKIPPED_SHARE * steps:
        return f"{skipped} of {steps} steps had a non-finite gradient and were skipped"
    return None


def _chance(summary: dict[str, Any], k: int | None) -> str | None:
    """Rule (2): the reason the run stayed at chance, or None."""
    accuracy = summary.get("final_test_accuracy")
    if accuracy is not None and k is not None:
        level = 1.0 / k + CHANCE_MARGIN
        if accuracy < level:
            return (
                f"test accuracy {accuracy:.2%} < {level:.2%} = 1/{k} + {CHANCE_MARGIN:g} "
                "(chance level plus margin)"
            )
    perplexity, unigram = summary.get("final_test_perplexity"), summary.get("unigram_perplexity")
    if perplexity is not None and unigram is not None and perplexity >= unigram:
        return f"test perplexity {perplexity:.2f} >= {unigram:.2f}, the unigram level"
    return None


def _ok_reason(summary: dict[str, Any], k: int | None) -> str:
    if summary.get("final_test_accuracy") is not None:
        shown = f"test accuracy {summary['final_test_accuracy']:.2%}"
        return shown if k is None else f"{shown}, chance is {1.0 / k:.2%}"
    if summary.get("final_test_perplexity") is not None:
        return f"test perplexity {summary['final_test_perplexity']:.2f}"
    return "no final evaluation to judge"


def judge(summary: dict[str, Any]) -> Outcome:
    """Apply rules (1)-(3) of the module docstring to the numbers of one ``summary.json``."""
    k = _outputs(summary)
    reason = _diverged(summary, k)  # (1)
    if reason is not None:
        return Outcome("diverged", reason)
    reason = _chance(summary, k)  # (2)
    if reason is not None:
        return Outcome("chance", reason)
    return Outcome("ok", _ok_reason(summary, k))  # (3)


def with_outcome(summary: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``summary`` with ``outcome`` and ``outcome_reason`` set by :func:`judge`."""
    outcome = judge(summary)
    return {**summary, "outcome": outcome.label, "outcome_reason": outcome.reason}
