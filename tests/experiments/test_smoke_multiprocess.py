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
    sources = ("real", "sim-workers", "sim-drawn")
    assert set(rows) == {(m, s) for m in ("vanilla", "topk-0.1") for s in sources}
    assert float(rows[("topk-0.1", "sim-workers")][2]) > 0  # uneven workers: stale updates
    # a smoke run is not a result: no verdict anywhere, the evidence says why
    assert all(f.verdict == "inconclusive" and "smoke" in f.evidence for f in results.findings)
    verdicts = results.table("verdicts").rows
    assert [r[1] for r in verdicts] == list(sources)
    assert all("smoke" in r[2] for r in verdicts)
    cells = sorted(p.stem for p in (tmp_path / "cells").iterdir())
    assert cells == sorted(f"{m}-{s}-s0" for m in ("vanilla", "topk-0.1") for s in sources)
    assert not (tmp_path / "runs").exists()  # no run folders: the cells are the record
    again = run_experiment("async-real", tmp_path, smoke=True)  # resumes: nothing runs
    assert "nothing ran" in again.notes[0]
    assert again.table("async_real").rows[0][:7] == results.table("async_real").rows[0][:7]
