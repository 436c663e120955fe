"""The rules that turn numbers into verdicts on the papers' claims."""

from __future__ import annotations

from sparsgd.experiments.sync_batch import read_sync_run
from sparsgd.runs import RunDir


def test_read_sync_run_marks_an_exploded_run_diverged(tmp_path):
    with RunDir(tmp_path / "run") as run:
        run.write_config({})
        run.write_summary(
            {"final_test_loss": 1576.0, "final_test_accuracy": 0.1, "num_classes": 10}
        )
    read = read_sync_run(str(tmp_path / "run"))
    assert read["outcome"] == "diverged" and read["summary"] is None
    assert read["diverged"].startswith("outcome: diverged (test loss 1576 > 23.03")
