"""The outcome rule of sparsgd.runs.outcome on hand-made summaries, one case per branch, and
complete_summary / closing_lines on a run folder."""

from __future__ import annotations

import json
import math
import time

import pytest

from sparsgd.runs import RunDir, closing_lines, complete_summary, judge, with_outcome
from sparsgd.runs.outcome import CHANCE_MARGIN, EXPLODED_FACTOR, SKIPPED_SHARE

TEN_CLASSES = {"num_classes": 10, "steps": 100, "final_test_loss": 0.3}


@pytest.mark.parametrize(
    ("summary", "label", "phrase"),
    [
        ({**TEN_CLASSES, "final_test_accuracy": 0.93}, "ok", "chance is 10.00%"),
        (
            {**TEN_CLASSES, "final_test_loss": 1576.0, "final_test_accuracy": 0.09},
            "diverged",
            "test loss 1576 > 23.03",
        ),
        (
            {**TEN_CLASSES, "final_test_loss": math.nan, "final_test_accuracy": 0.5},
            "diverged",
            "not finite",
        ),
        (
            {**TEN_CLASSES, "final_test_accuracy": 0.9, "skipped_nonfinite_steps": 51},
            "diverged",
            "51 of 100 steps",
        ),
        (
            {**TEN_CLASSES, "final_test_accuracy": 0.9, "skipped_nonfinite": 60},
            "diverged",
            "60 of 100 steps",
        ),
        (
            {**TEN_CLASSES, "final_test_loss": 2.3, "final_test_accuracy": 0.11},
            "chance",
            "1/10 + 0.05",
        ),
        ({"num_classes": 2, "final_test_loss": 0.69, "final_test_accuracy": 0.54}, "chance", "1/2"),
        (
            {
                "vocab_size": 50,
                "final_test_loss": 3.0,
                "final_test_perplexity": 20.1,
                "unigram_perplexity": 20.0,
            },
            "chance",
            "unigram",
        ),
        (
            {"vocab_size": 50, "final_test_loss": 3.0, "final_test_perplexity": 20.1},
            "ok",
            "perplexity 20.10",
        ),
        (
            {"vocab_size": 50, "final_test_loss": 40.0, "final_test_perplexity": 2.4e17},
            "diverged",
            "x ln 50",
        ),
        ({"final_test_loss": 1576.0, "final_test_accuracy": 0.05}, "ok", "test accuracy"),
        ({"final_test_accuracy": None, "final_test_loss": None}, "ok", "no final evaluation"),
    ],
)
def test_judge_each_branch(summary, label, phrase):
    outcome = judge(summary)
    assert outcome.label == label
    assert phrase in outcome.reason
    assert outcome.line() == f"outcome: {label} ({outcome.reason})"


def test_thresholds_sit_where_the_docstring_says():
    limit = EXPLODED_FACTOR * math.log(10)
    assert judge({**TEN_CLASSES, "final_test_loss": limit * 0.999}).label == "ok"
    assert judge({**TEN_CLASSES, "final_test_loss": limit * 1.001}).label == "diverged"
    level = 0.1 + CHANCE_MARGIN
    assert judge({**TEN_CLASSES, "final_test_accuracy": level - 1e-6}).label == "chance"
    assert judge({**TEN_CLASSES, "final_test_accuracy": level + 1e-6}).label == "ok"
    half = int(SKIPPED_SHARE * 100)
    assert judge({**TEN_CLASSES, "skipped_nonfinite_steps": half}).label == "ok"
    assert judge({**TEN_CLASSES, "skipped_nonfinite_steps": half + 1}).label == "diverged"


def test_with_outcome_adds_two_keys_and_keeps_the_rest():
    summary = {**TEN_CLASSES, "final_test_accuracy": 0.12}
    judged = with_outcome(summary)
    assert judged == {**summary, "outcome": "chance", "outcome_reason": judged["outcome_reason"]}
    assert "outcome" not in summary  # a copy, the input is unchanged


def test_complete_summary_rewrites_the_file_with_total_time_and_outcome(tmp_path):
    with RunDir(tmp_path / "run") as run:
        run.write_config({})
        run.write_summary({**TEN_CLASSES, "final_test_accuracy": 0.8, "train_seconds": 0.0})
    started = time.perf_counter()
    summary = complete_summary(tmp_path / "run", started)
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == summary
    assert summary["outcome"] == "ok" and summary["total_seconds"] >= 0.0
    time_line, outcome_line = closing_lines(summary)
    assert time_line.startswith("time: 0.0 s training, ") and " s in all " in time_line
    assert outcome_line == "outcome: ok (test accuracy 80.00%, chance is 10.00%)"
