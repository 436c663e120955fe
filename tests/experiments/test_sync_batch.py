"""A batch of S-SGD runs survives a diverged run; finished runs can be reused."""

from __future__ import annotations

import pytest

from sparsgd.experiments.sync_batch import finished_before, run_sync_batch
from sparsgd.experiments.sync_tasks import SyncTask

pytestmark = [pytest.mark.timeout(300), pytest.mark.multiprocess, pytest.mark.slow]

EXPLODING_LR = 1e8  # the first SGD steps overflow the weights: the test loss is not finite


def test_a_diverged_run_is_recorded_and_the_next_one_still_runs(tmp_path):
    task = SyncTask(
        "FNN-3 / digits",
        "fnn3",
        "digits",
        epochs=0.25,  # 6 steps of 2 x 32 samples: the checks do not depend on the length
        lr=0.05,
        hidden_size=16,
        momentum=0.0,
        log_every=5,
    )
    exploding = SyncTask(**{**task.__dict__, "lr": EXPLODING_LR})
    configs = [
        exploding.config("dense", 1.0, 2, str(tmp_path / "a"), 0, None),
        task.config("gtopk", 0.01, 2, str(tmp_path / "b"), 0, None),
    ]
    first, second = run_sync_batch(configs)
    assert first["diverged"] and "must be a finite number" in first["diverged"]
    assert first["summary"] is None
    assert second["diverged"] is None
    assert second["summary"]["steps"] > 0
    assert second["numel"] == first["numel"] > 0
    # --reuse: the finished run is read back, not run again; the diverged one would run again
    (again,) = run_sync_batch(configs[1:], reuse=True)
    assert again["summary"] == second["summary"]
    changed = task.config("gtopk", 0.02, 2, str(tmp_path / "b"), 0, None)
    assert not finished_before(changed)  # another config in the same folder is not reused
