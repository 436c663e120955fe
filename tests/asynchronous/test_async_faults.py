"""A worker killed by a signal mid-run: the server carries on with the others (under an SSP
bound, which the dead worker must stop holding), the run completes, and the summary says
which worker died, when, and what residual it took."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.real_run import AsyncRun
from sparsgd.worker.problem import Problem

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(180)]

PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 384),))
CFG = AsyncConfig(
    mode="async",
    workers=3,
    steps=300,
    lr=0.05,
    batch_size=16,
    density=0.05,
    delay="constant:0.01",  # ~10 ms per step: the run lasts long enough to kill a worker in it
    policy="ssp",  # a dead worker must leave the SSP minimum, or the others would wait forever
    ssp_bound=3,
    timeout_s=60.0,
)
VICTIM = 1  # worker 1 = rank 2
PUSHES_BEFORE_KILL = 5
WAIT_S = 150.0


def _updates(out) -> list[dict]:
    try:
        lines = (out / "log.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written right now
            break
    return [r for r in records if r["kind"] == "update"]


@pytest.mark.slow
def test_killed_worker_leaves_the_run_completing_with_the_others(tmp_path):
    out = tmp_path / "run"
    run = AsyncRun(CFG, PROBLEM, out)
    run.start()
    deadline = time.monotonic() + WAIT_S
    while sum(r["worker"] == VICTIM for r in _updates(out)) < PUSHES_BEFORE_KILL:
        assert time.monotonic() < deadline, "the victim never pushed"
        time.sleep(0.02)
    os.kill(run.worker_pids[VICTIM], signal.SIGKILL)
    summary = run.wait(WAIT_S)

    assert summary["steps"] >= CFG.steps  # the others finished the run
    assert summary["ssp_max_gap"] <= CFG.ssp_bound
    (death,) = summary["dead_workers"]
    assert death["worker"] == VICTIM and death["reason"].startswith("lost")
    assert PUSHES_BEFORE_KILL <= death["pushes_applied"] < CFG.steps
    assert death["step"] < summary["steps"]
    last_push = [r for r in _updates(out) if r["worker"] == VICTIM and not r["flush"]][-1]
    assert death["residual_norm"] == last_push["residual_norm"] > 0  # the unsent mass
    assert summary["flushes_per_worker"] == [1, 0, 1]  # the living flushed, the dead could not
    assert summary["pushes_sent_reported_per_worker"][VICTIM] is None
    alive = [0, 2]
    for w in alive:
        assert (
            summary["pushes_sent_reported_per_worker"][w] == summary["pushes_applied_per_worker"][w]
        )
    assert summary["pushes_received_per_worker"] == summary["pushes_applied_per_worker"]
    assert run.processes[VICTIM + 1].exitcode == -signal.SIGKILL
