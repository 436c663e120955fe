"""The rules that turn numbers into verdicts on the papers' claims."""

from __future__ import annotations

from sparsgd.experiments.gtopk_delta import _learned
from sparsgd.experiments.staleness import staleness_config
from sparsgd.experiments.staleness_report import _compare, _mean_final, _verdict
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


def test_staleness_verdict_counts_cells():
    assert _verdict(3, 3) == "agrees"
    assert _verdict(2, 4) == "partly agrees"
    assert _verdict(1, 4) == "disagrees"
    assert _verdict(0, 0) == "inconclusive"


def test_a_run_at_chance_did_not_learn():
    chance = 0.1
    assert not _learned({"epochs": [{"test_accuracy": 0.1135}], "chance": chance})
    assert _learned({"epochs": [{"test_accuracy": 0.9}], "chance": chance})


def _run(accuracy: float, steps: int = 12) -> dict:
    return {
        "diverged": False,
        "chance": 0.1,
        "updates": [steps],
        "accuracy": [accuracy],
        "steps": steps,
    }


def test_cells_where_every_method_failed_are_left_out():
    cfg = staleness_config(True)  # drawn 0 and 4 with every method, workers-4 with two
    cells = {(s.label, m): [_run(0.5)] for s, m in cfg.grid()}
    for m in ("vanilla", "topk-0.1", "topk-0.01"):
        cells[("drawn-4", m)] = [_run(0.11)]  # all at chance: uninformative
    held, total, _, left_out = _compare(
        cfg, {"logreg": cells}, lambda c, s: _mean_final(c, s, "vanilla")
    )
    assert left_out == 1
    assert (held, total) == (0, 0)  # workers-4 has no topk-0.01 run: not compared
    cells[("drawn-4", "vanilla")] = [_run(0.9)]  # now the cell says something: Top-k is worse
    held, total, _, left_out = _compare(
        cfg, {"logreg": cells}, lambda c, s: _mean_final(c, s, "vanilla")
    )
    assert (held, total, left_out) == (0, 1, 0)


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
