"""The rules that turn numbers into verdicts on the papers' claims."""

from __future__ import annotations

from sparsgd.experiments.gtopk_delta import _learned
from sparsgd.experiments.sync_batch import read_sync_run
from sparsgd.experiments.sync_study import (
    ACCURACY_GAP,
    PERPLEXITY_RATIO,
    consistent_with,
    holds_up,
)
from sparsgd.runs import RunDir


def test_consistency_with_dense():
    assert consistent_with(0.95, 0.95 - ACCURACY_GAP / 2, "test_accuracy")
    assert not consistent_with(0.95, 0.95 - 2 * ACCURACY_GAP, "test_accuracy")
    assert consistent_with(100.0, 100.0 * PERPLEXITY_RATIO, "test_perplexity")
    assert not consistent_with(100.0, 100.0 * PERPLEXITY_RATIO * 1.01, "test_perplexity")


def test_a_run_at_chance_did_not_learn():
    chance = 0.1
    assert not _learned({"epochs": [{"test_accuracy": 0.1135}], "chance": chance})
    assert _learned({"epochs": [{"test_accuracy": 0.9}], "chance": chance})


def _sync_run(accuracy: float, outcome: str) -> dict:
    summary = {"final_test_accuracy": accuracy, "final_test_loss": 0.5, "num_classes": 10}
    return {"summary": summary, "diverged": None, "outcome": outcome}


def test_a_sync_run_at_chance_never_counts_as_agreement():
    dense = [_sync_run(0.12, "chance"), _sync_run(0.11, "chance")]
    other = [_sync_run(0.12, "chance"), _sync_run(0.12, "chance")]
    ok, why = holds_up(dense, other, "test_accuracy")
    assert not ok and why == "4 of 4 runs stayed at chance level"
    learned = [_sync_run(0.9, "ok"), _sync_run(0.91, "ok")]
    assert holds_up(learned, [_sync_run(0.9, "ok"), _sync_run(0.9, "ok")], "test_accuracy")[0]
    assert not holds_up(learned, [_sync_run(0.9, "ok"), _sync_run(0.12, "chance")], "x")[0]


def test_read_sync_run_marks_an_exploded_run_diverged(tmp_path):
    with RunDir(tmp_path / "run") as run:
        run.write_config({})
        run.write_summary(
            {"final_test_loss": 1576.0, "final_test_accuracy": 0.1, "num_classes": 10}
        )
    read = read_sync_run(str(tmp_path / "run"))
    assert read["outcome"] == "diverged" and read["summary"] is None
    assert read["diverged"].startswith("outcome: diverged (test loss 1576 > 23.03")
