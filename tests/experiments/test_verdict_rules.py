"""The rules that turn numbers into verdicts on the papers' claims."""

from __future__ import annotations

from sparsgd.experiments.gtopk_delta import _learned
from sparsgd.experiments.sync_batch import read_sync_run
from sparsgd.runs import RunDir


def test_a_run_at_chance_did_not_learn():
    chance = 0.1
    assert not _learned({"epochs": [{"test_accuracy": 0.1135}], "chance": chance})
    assert _learned({"epochs": [{"test_accuracy": 0.9}], "chance": chance})


def test_read_sync_run_marks_an_exploded_run_diverged(tmp_path):
    with RunDir(tmp_path / "run") as run:
        run.write_config({})
        run.write_summary(
            {"final_test_loss": 1576.0, "final_test_accuracy": 0.1, "num_classes": 10}
        )
    read = read_sync_run(str(tmp_path / "run"))
    assert read["outcome"] == "diverged" and read["summary"] is None
    assert read["diverged"].startswith("outcome: diverged (test loss 1576 > 23.03")
