"""The real server process against hand-driven workers: the update it applies for a given
(push, tau) is the one the in-process server state (the simulator's code) applies, and bad
pushes and broken frames are rejected, counted and never applied."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as torch_mp
from async_scripted import Script, message, run

from sparsgd.asynchronous.build import build_server_state
from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.runs import RunDir, load_checkpoint
from sparsgd.worker.problem import Problem

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(120)]

PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 64),))
CFG = AsyncConfig(
    mode="async",
    workers=2,
    steps=3,
    lr=0.1,
    policy="dc_asgd",
    dc_lambda=0.5,
    dc_adaptive=True,
    server_momentum=0.5,
    memory="none",
    checkpoint_every=0,  # the one at the end (mid-run ones ask for states these workers lack)
    timeout_s=60.0,
)
JOIN_S = 90.0


@pytest.mark.slow
def test_scripted_workers_get_the_simulator_update_and_bad_pushes_are_refused(tmp_path):
    x0 = PROBLEM.build_model(PROBLEM.load()).flat()
    store = dist.TCPStore(
        "127.0.0.1", 0, 3, True, timeout=timedelta(seconds=60), wait_for_workers=False
    )
    script = Script(CFG, PROBLEM, str(tmp_path / "run"), store.port, x0.numel())
    context = torch_mp.start_processes(
        run, args=(script,), nprocs=3, join=False, start_method="spawn"
    )
    for p in context.processes:
        p.join(JOIN_S)
    assert [p.exitcode for p in context.processes] == [0, 0, 0]

    # the same pulls and pushes through the in-process server state
    state = build_server_state(CFG, x0)
    state.pull(0)
    state.pull(1)
    state.push(message(1, x0.numel()), 0, worker=0)
    state.pull(0)
    state.push(message(2, x0.numel()), 0, worker=1)
    state.push(message(3, x0.numel()), 1, worker=0)
    run_dir = RunDir(tmp_path / "run", resume=True)
    served = load_checkpoint(run_dir.latest_checkpoint())["server"]
    assert served["version"] == state.version == 3
    assert torch.equal(served["x"], state.x)

    summary = run_dir.read_summary()
    assert summary["pushes_rejected"] == {
        "malformed": 2,  # unsorted indices, a header with nnz > numel
        "non_finite": 1,
        "future_version": 1,
        "version_mismatch": 1,
        "too_large": 0,  # --max-push: none of these pushes is absurdly large
    }
    assert summary["updates_applied"] == 3
    assert summary["staleness"]["histogram"] == {"0": 1, "1": 2}
    assert [d["worker"] for d in summary["dead_workers"]] == [1]
    assert summary["dead_workers"][0]["reason"].startswith("malformed")
    taus = [json.loads(line).get("tau") for line in (tmp_path / "run" / "log.jsonl").open()]
    assert [t for t in taus if t is not None] == [0, 1, 1]
