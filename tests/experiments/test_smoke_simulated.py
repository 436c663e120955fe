"""Smoke runs of the one-process experiments: gtopk-delta and staleness."""

from __future__ import annotations

import pytest
from smoke_checks import check_results_folder

from sparsgd.experiments.runner import run_experiment
from sparsgd.runs import RunDir

pytestmark = pytest.mark.timeout(300)


@pytest.mark.slow
def test_gtopk_delta_smoke(tmp_path):
    run_experiment("gtopk-delta", tmp_path, smoke=True)
    results = check_results_folder(tmp_path, "gtopk-delta")
    summary = results.table("delta_summary")
    assert [row[0] for row in summary.rows] == ["fnn3-P4-gtopk", "fnn3-P4-topk_allgather"]
    run = RunDir(tmp_path / "runs" / "fnn3-P4-gtopk-seed0", resume=True)
    steps = [r for r in run.read_log() if r["kind"] == "step"]
    assert len(steps) == 2 * 4  # 2 epochs of 4 steps
    # the exact top-k of x is a contraction: ||x - topk(x)||^2 <= (1 - k/d) ||x||^2
    assert all(0.0 <= r["delta_topk"] <= 1.0 for r in steps)
    assert all(r["delta"] > 0.0 for r in steps)


@pytest.mark.slow
def test_staleness_smoke(tmp_path):
    run_experiment("staleness", tmp_path, smoke=True)
    results = check_results_folder(tmp_path, "staleness")
    taus = {row[0]: row[1] for row in results.table("tau_logreg").rows}
    assert taus["sync"] == 0.0  # one worker, no drawn staleness: synchronous SGD
    assert taus["drawn-4"] > 0 and taus["workers-4"] > 0
    final = results.table("final_logreg")
    assert len(final.rows) == 10  # every method of the study ran
