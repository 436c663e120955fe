"""Faults at the real parameter server (issue 13, items 4 and 5), each bounded in time:
every field of a push is checked, an absurd push is refused and counted, a run whose pushes
are all refused is halted, and a run whose version stops moving is halted after --timeout."""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as torch_mp
from faults_scripted import Script, good, run

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.runs import RunDir, load_checkpoint
from sparsgd.worker.problem import Problem

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(120)]

PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 64),))
LR = 0.1
JOIN_S = 90.0
STALL_TIMEOUT_S = 3.0  # --timeout of the silent run: short, the worker pulls every 50 ms


def _serve(tmp_path, kind: str, cfg: AsyncConfig) -> tuple[RunDir, torch.Tensor]:
    """Run the real server against the scripted worker ``kind``; both must exit 0."""
    x0 = PROBLEM.build_model(PROBLEM.load()).flat()
    store = dist.TCPStore(
        "127.0.0.1", 0, 2, True, timeout=timedelta(seconds=60), wait_for_workers=False
    )
    script = Script(kind, cfg, PROBLEM, str(tmp_path / "run"), store.port, x0.numel())
    context = torch_mp.start_processes(
        run, args=(script,), nprocs=2, join=False, start_method="spawn"
    )
    for p in context.processes:
        p.join(JOIN_S)
    assert [p.exitcode for p in context.processes] == [0, 0]
    return RunDir(tmp_path / "run", resume=True), x0


def _config(**changes) -> AsyncConfig:
    base = {"mode": "async", "workers": 1, "steps": 1, "lr": LR, "memory": "none"}
    return AsyncConfig(**{**base, **changes})


def _log_kinds(run_dir: RunDir, kind: str) -> list[dict]:
    return [r for r in run_dir.read_log() if r.get("kind") == kind]


def test_every_bad_field_of_a_push_is_refused_and_counted(tmp_path):
    run_dir, x0 = _serve(tmp_path, "fields", _config())
    summary = run_dir.read_summary()
    assert summary["pushes_rejected"] == {
        "malformed": 1,  # residual norm -1
        "non_finite": 2,  # NaN residual norm, NaN loss
        "too_large": 1,  # an entry of 1e30 (default --max-push)
        "future_version": 0,
        "version_mismatch": 0,
    }
    assert summary["updates_applied"] == 1 and summary["halted"] is None
    # the one good push, applied exactly: x = x0 - lr * c
    expected = x0 - LR * good(x0.numel()).to_dense(x0.dtype)
    assert torch.equal(load_checkpoint(run_dir.latest_checkpoint())["server"]["x"], expected)
    # the flush's counts were NaN and negative: recorded as unknown, not as numbers
    assert summary["pushes_sent_reported_per_worker"] == [None]
    assert summary["skipped_nonfinite"] == 0


def test_pushes_all_refused_halt_the_run(tmp_path):
    run_dir, x0 = _serve(tmp_path, "stall", _config(steps=50, stall_pushes=4))
    summary = run_dir.read_summary()
    assert summary["pushes_rejected"]["too_large"] == 4
    assert summary["updates_applied"] == 0 and summary["steps"] == 0
    assert "4 pushes in a row refused" in summary["halted"]["reason"]
    assert [h["step"] for h in _log_kinds(run_dir, "halt")] == [0]
    assert torch.equal(load_checkpoint(run_dir.latest_checkpoint())["server"]["x"], x0)


def test_a_version_that_stops_moving_halts_the_run_after_timeout(tmp_path):
    run_dir, _ = _serve(tmp_path, "silent", _config(steps=50, timeout_s=STALL_TIMEOUT_S))
    summary = run_dir.read_summary()
    halt = summary["halted"]
    assert "no new model version" in halt["reason"] and "--timeout 3" in halt["reason"]
    assert halt["seconds"] > STALL_TIMEOUT_S  # a lower bound: it never fires early
    assert summary["updates_applied"] == 0
    assert [h["reason"] for h in _log_kinds(run_dir, "halt")] == [halt["reason"]]
