"""Smoke runs of the experiments that start processes: comm, real server.

The S-SGD studies' smoke runs are in test_smoke_sync_studies.py."""

from __future__ import annotations

import pytest
from smoke_checks import check_results_folder

from sparsgd.experiments.runner import run_experiment

pytestmark = [pytest.mark.timeout(300), pytest.mark.multiprocess, pytest.mark.slow]


def test_comm_scaling_smoke(tmp_path):
    run_experiment("comm-scaling", tmp_path, smoke=True)
    results = check_results_folder(tmp_path, "comm-scaling")
    measured = results.table("measured").rows
    assert {(r[0], r[1]) for r in measured} == {
        (p, c) for p in (2, 3) for c in ("dense", "topk_allgather", "gtopk", "gtopk_exact")
    }
    assert all(r[2] > 0 for r in measured)
    efficiency = results.table("efficiency").rows
    assert all(0 < r[col] <= 1 for r in efficiency for col in (6, 7, 8))  # e of each method
    assert {r[0] for r in results.table("lab").rows} == {2, 4, 8}
    assert all(f.verdict == "inconclusive" for f in results.findings)  # smoke: no verdicts


def test_async_real_smoke(tmp_path):
    run_experiment("async-real", tmp_path, smoke=True)
    results = check_results_folder(tmp_path, "async-real")
    rows = {(r[0], r[1]): r for r in results.table("async_real").rows}
    assert set(rows) == {("topk-0.1", s) for s in ("real", "sim-workers", "sim-drawn")}
    assert float(rows[("topk-0.1", "sim-workers")][2]) > 0  # uneven workers: stale updates
