"""The simulator: staleness 0 is plain SGD bit for bit, runs are deterministic, every push is
applied once, SSP holds its bound, and a resumed simulation continues exactly."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.compress.memory import make_memory
from sparsgd.compress.registry import make_compressor
from sparsgd.runs import OUTCOMES, RunDir, load_checkpoint
from sparsgd.sim.sim_run import build_simulation, run_simulation
from sparsgd.worker.batches import BatchStream
from sparsgd.worker.problem import Problem
from sparsgd.worker.seeds import generator_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("one_torch_thread")]

PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 256),))
FNN = Problem("fnn3", "synthetic", seed=1, dataset_options=(("num_train", 256),), hidden_size=16)
BASE = AsyncConfig(mode="sim", lr=0.1, batch_size=16, seed=3, steps=30, density=0.1)


def final_x(cfg: AsyncConfig, problem: Problem = PROBLEM) -> torch.Tensor:
    core, sim = build_simulation(cfg, problem)
    sim.run()
    return core.state.x


def reference_sgd(cfg: AsyncConfig, problem: Problem, compressor: str, memory: str) -> torch.Tensor:
    """Single-worker (sparsified) SGD written out: torch.optim.SGD, the worker's batches."""
    bundle = problem.load()
    model = problem.build_model(bundle).module
    inputs, targets = bundle.train.tensors
    stream = BatchStream(
        len(targets), cfg.batch_size, generator_for(cfg.seed, "worker", 0, "batches")
    )
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    params = list(model.parameters())
    comp, mem = make_compressor(compressor), make_memory(memory, sum(p.numel() for p in params))
    for _ in range(cfg.steps):
        batch = stream.next()
        opt.zero_grad()
        F.cross_entropy(model(inputs[batch]), targets[batch]).backward()
        p = mem.compensate(torch.cat([q.grad.reshape(-1) for q in params]))
        msg = comp.compress(p, cfg.density)
        c = msg.to_dense()
        mem.update_(p - c, msg.indices.long())
        offset = 0
        for q in params:
            q.grad = c[offset : offset + q.numel()].view_as(q).clone()
            offset += q.numel()
        opt.step()
    x = parameters_to_vector(params).detach()
    rest = mem.compensate(torch.zeros_like(x))  # the flush at the end: the whole residual
    return x.add(rest, alpha=-cfg.lr)


@pytest.mark.parametrize(("compressor", "memory"), [("dense", "none"), ("topk", "residual")])
def test_staleness_zero_is_single_worker_sgd_bit_for_bit(compressor, memory):
    cfg = replace(BASE, compressor=compressor, memory=memory, workers=1)
    want = reference_sgd(cfg, FNN, compressor, memory)
    drawn = final_x(replace(cfg, staleness="constant:0"), FNN)
    one_worker = final_x(cfg, FNN)  # one simulated worker: tau is always 0
    assert torch.equal(drawn, want)
    assert torch.equal(one_worker, want)


def test_drawn_staleness_takes_the_gradient_on_the_old_model():
    cfg = replace(BASE, workers=1, compressor="dense", memory="none")
    fresh, stale = (
        final_x(replace(cfg, staleness="constant:0")),
        final_x(replace(cfg, staleness="constant:3")),
    )
    assert not torch.equal(fresh, stale)
    core, sim = build_simulation(replace(cfg, staleness="constant:3"), PROBLEM)
    sim.run()
    hist = core.state.staleness_summary()["histogram"]
    # tau = min(3, t): 0, 1, 2 for the first three updates, then 3 (memory none: no flush)
    assert hist == {"0": 1, "1": 1, "2": 1, "3": cfg.steps - 3}


RICH = replace(
    BASE,
    workers=4,
    steps=40,
    worker_time="exponential:0.05",
    slowdown=(1.0, 1.0, 2.0, 3.0),
    policy="dc_asgd",
    dc_adaptive=True,
    server_momentum=0.5,
    sparse_downlink=True,
)


def test_simulation_is_deterministic_and_the_seed_matters(tmp_path):
    a = run_simulation(RICH, PROBLEM, tmp_path / "a")
    b = run_simulation(RICH, PROBLEM, tmp_path / "b")
    run_simulation(replace(RICH, seed=4), PROBLEM, tmp_path / "c")
    log = {k: (tmp_path / k / "log.jsonl").read_text() for k in "abc"}
    assert log["a"] == log["b"]
    clocks = ("wall_seconds", "train_seconds", "total_seconds")
    assert {k: v for k, v in a.items() if k not in clocks} == {
        k: v for k, v in b.items() if k not in clocks
    }
    assert log["a"] != log["c"]


def test_every_push_is_applied_exactly_once():
    core, sim = build_simulation(RICH, PROBLEM)
    sim.run()
    counts = core.recorder.counts
    computed = [gw.steps for gw in sim.workers]
    assert counts["pushes"] == computed  # every computed push reached the server ...
    assert counts["applied"] == computed  # ... and was applied, none rejected
    assert sum(core.state.rejected.values()) == 0
    assert counts["flushes"] == [1, 1, 1, 1]
    assert core.state.applied == sum(computed) + 4 == core.state.version
    assert core.state.staleness_summary()["count"] == sum(
        computed
    )  # flushes stay out of the statistics
    assert core.state.version >= RICH.steps


def _max_push_gap(log_path) -> int:
    """Largest (max - min) of the workers' applied pushes along the log."""
    counts = [0, 0, 0, 0]
    worst = 0
    for line in log_path.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "update" and not record["flush"]:
            counts[record["worker"]] += 1
            worst = max(worst, max(counts) - min(counts))
    return worst


def test_ssp_bound_is_never_exceeded(tmp_path):
    straggler = replace(
        BASE, workers=4, steps=60, worker_time="constant:0.1", slowdown=(1.0, 1.0, 1.0, 6.0)
    )
    free = run_simulation(straggler, PROBLEM, tmp_path / "free")
    bounded = run_simulation(
        replace(straggler, policy="ssp", ssp_bound=2), PROBLEM, tmp_path / "ssp"
    )
    assert bounded["ssp_max_gap"] <= 2 < free["ssp_max_gap"]
    # a worker granted at gap <= S pushes once more: the gap seen in the log is at most S + 1
    assert (
        _max_push_gap(tmp_path / "ssp" / "log.jsonl")
        <= 2 + 1
        < _max_push_gap(tmp_path / "free" / "log.jsonl")
    )
    assert bounded["steps"] >= 60


def test_equal_workers_give_staleness_about_w_minus_1(tmp_path):
    cfg = replace(BASE, workers=4, steps=80, worker_time="constant:0.1")
    summary = run_simulation(cfg, PROBLEM, tmp_path / "run")
    records = [
        json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    ]
    # until the server stops; after it, the workers' flushes are versions too and the last
    # pushes in flight see them
    taus = [r["tau"] for r in records if r["kind"] == "update" and r["step"] <= cfg.steps]
    assert taus[:4] == [0, 1, 2, 3]  # the first round: all pulled version 0
    assert set(taus[4:]) == {3}  # then round robin: W - 1 other pushes between pull and push
    assert summary["staleness"]["mean"] > 3 - 0.25
    assert summary["sim_seconds"] > 0.1 * cfg.steps / 4  # steps / W rounds of compute


def test_sparse_downlink_sends_fewer_bytes_for_the_same_run():
    # beta = 0: message times do not depend on bytes, so both runs see the same event order
    # and the downlink encoding is the only difference
    cfg = replace(RICH, policy="vanilla", server_momentum=0.0, density=0.02, network="0.0005,0")
    dense_core, dense_sim = build_simulation(replace(cfg, sparse_downlink=False), PROBLEM)
    sparse_core, sparse_sim = build_simulation(cfg, PROBLEM)
    dense_sim.run()
    sparse_sim.run()
    assert torch.equal(dense_core.state.x, sparse_core.state.x)
    down = dense_core.recorder.counts["downlink_bytes"]
    sparse_down = sparse_core.recorder.counts["downlink_bytes"]
    assert all(s < d for s, d in zip(sparse_down, down, strict=True))
    assert dense_core.recorder.counts["uplink_bytes"] == sparse_core.recorder.counts["uplink_bytes"]
    assert sparse_sim.down.bytes == sum(sparse_down) and dense_sim.down.bytes == sum(down)


def test_summary_has_the_sync_keys_and_the_staleness(tmp_path):
    summary = run_simulation(replace(RICH, checkpoint_every=10), PROBLEM, tmp_path / "run")
    for key in (
        "final_test_accuracy",
        "bytes_sent_per_rank",
        "dense_bytes_per_rank",
        "steps",
        "wall_seconds",
        "train_seconds",
        "total_seconds",
        "outcome",
        "outcome_reason",
    ):
        assert key in summary
    assert 0 < summary["train_seconds"] <= summary["total_seconds"]
    assert summary["num_classes"] == 4 and summary["outcome"] in OUTCOMES
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == summary
    assert set(summary["staleness"]) == {"mean", "max", "count", "histogram"}
    assert summary["staleness"]["mean"] > 0
    assert len(summary["bytes_uplink_per_worker"]) == len(summary["bytes_downlink_per_worker"]) == 4
    assert all(
        s < d
        for s, d in zip(
            summary["bytes_sent_per_rank"], summary["dense_bytes_per_rank"], strict=True
        )
    )
    assert summary["sim_seconds"] > 0 and 0.0 <= summary["final_test_accuracy"] <= 1.0
    records = [
        json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    ]
    updates = [r for r in records if r["kind"] == "update"]
    assert sum(len(r["taus"]) for r in updates) == summary["updates_applied"]
    assert any(r["kind"] == "eval" for r in records)


@pytest.mark.parametrize(
    "settings",
    [{}, {"compressor": "dense", "memory": "none"}],  # dense: pushes in flight are tensors
    ids=["topk", "dense-pushes"],
)
def test_resumed_simulation_continues_exactly(tmp_path, settings):
    cfg = replace(RICH, checkpoint_every=10, **settings)
    full = run_simulation(cfg, PROBLEM, tmp_path / "full")
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    cut = RunDir(tmp_path / "cut", resume=True)
    kept = [p for p in cut.checkpoints() if load_checkpoint(p)["server"]["version"] <= 30]
    assert kept, "the run must have left a checkpoint at or before step 30"
    for path in cut.checkpoints():
        if path not in kept:
            path.unlink()  # as if the run had crashed right after its step-30 checkpoint
    (tmp_path / "cut" / "summary.json").unlink()
    resumed = run_simulation(cfg, PROBLEM, tmp_path / "cut", resume=True)
    drop = ("wall_seconds", "train_seconds", "total_seconds")
    assert {k: v for k, v in resumed.items() if k not in drop} == {
        k: v for k, v in full.items() if k not in drop
    }
    assert (tmp_path / "cut" / "log.jsonl").read_text() == (
        tmp_path / "full" / "log.jsonl"
    ).read_text()
    x_full = load_checkpoint(RunDir(tmp_path / "full", resume=True).latest_checkpoint())["server"][
        "x"
    ]
    x_cut = load_checkpoint(cut.latest_checkpoint())["server"]["x"]
    assert torch.equal(x_full, x_cut)
