"""Simulated workers share what lives only within a step, and dense pushes skip the message:
both give the run that per-worker compressors, per-worker buffers and messages give, bit for
bit; and the dense state kept grows by one residual per worker."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.compress.memory import make_memory
from sparsgd.compress.registry import make_compressor
from sparsgd.sim.sim_run import build_simulation
from sparsgd.worker.problem import Problem

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("one_torch_thread")]

PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 256),))
CFG = AsyncConfig(
    mode="sim", lr=0.1, batch_size=8, seed=4, steps=40, density=0.1, workers=6, log_every=1
)


def _records(core) -> list[str]:
    """Every log record the recorder wrote, as JSON (captured instead of a run folder)."""
    lines: list[str] = []
    core.recorder._write = lambda record: lines.append(json.dumps(record, sort_keys=True))
    return lines


def _run(cfg: AsyncConfig, own: bool) -> tuple[torch.Tensor, list[str], dict]:
    """x, log and summary; ``own``: each worker its own compressor, memory buffers and
    message pushes, as a real worker process has them (the reference)."""
    core, sim = build_simulation(cfg, PROBLEM)
    if own:
        for gw in sim.workers:
            gw.compressor = make_compressor(cfg.compressor, **dict(cfg.compressor_settings))
            gw.memory = make_memory(cfg.memory, core.state.numel)
            gw.dense_pushes = False
    lines = _records(core)
    sim.run()
    summary = core.finish(0.0, sim_seconds=sim.now)
    summary = {k: v for k, v in summary.items() if "seconds" not in k}
    return core.state.x, lines, summary


@pytest.mark.parametrize(
    "settings",
    [
        {},  # topk + residual: one compressor, one p buffer for all
        {"compressor": "threshold", "compressor_settings": (("threshold", 0.01),)},
        {"compressor": "dense", "memory": "none"},  # dense pushes
        {"compressor": "topk", "density": 1.0, "memory": "none"},  # dense pushes
        {"compressor": "dense", "memory": "residual"},  # messages: the memory keeps e
        {"sparse_downlink": True, "policy": "dc_asgd"},
    ],
)
def test_shared_work_and_dense_pushes_give_the_run_of_separate_workers(settings):
    cfg = replace(CFG, **settings)
    x, log, summary = _run(cfg, own=False)
    x_ref, log_ref, summary_ref = _run(cfg, own=True)
    assert torch.equal(x, x_ref)
    assert log == log_ref and len(log) >= cfg.steps
    assert summary == summary_ref


def test_dense_pushes_are_tensors_and_others_messages():
    dense = replace(CFG, compressor="dense", memory="none")
    _, sim = build_simulation(dense, PROBLEM)
    assert all(gw.dense_pushes for gw in sim.workers)
    push = sim.workers[0].step(sim.core.state.x)
    assert isinstance(push.msg, torch.Tensor) and push.msg.shape == (sim.core.state.numel,)
    assert push.nbytes == 4 * sim.core.state.numel  # a dense frame: float32 values only
    for settings in ({}, {"compressor": "dense"}, {"density": 1.0, "compressor": "randomk"}):
        _, sim = build_simulation(replace(CFG, **settings), PROBLEM)
        assert not any(gw.dense_pushes for gw in sim.workers)


def _dense_storages(sim, numel: int) -> int:
    """Distinct (numel,) storages held by the simulated workers' memories and compressors."""
    seen = set()

    def visit(obj, depth: int) -> None:
        if isinstance(obj, torch.Tensor):
            if obj.numel() >= numel:
                seen.add(obj.untyped_storage().data_ptr())
        elif depth and isinstance(obj, dict):
            for value in obj.values():
                visit(value, depth - 1)
        elif depth and isinstance(obj, (list, tuple)):
            for value in obj:
                visit(value, depth - 1)
        elif depth and hasattr(obj, "__dict__"):
            visit(vars(obj), depth - 1)

    for gw in sim.workers:
        visit(gw.memory, 4)
        visit(gw.compressor, 4)
    return len(seen)


def test_dense_state_grows_by_one_residual_per_worker():
    held = {}
    for workers in (3, 9):
        core, sim = build_simulation(replace(CFG, workers=workers), PROBLEM)
        sim.advance(CFG.steps // 2)  # every worker has stepped: its buffers are in use
        held[workers] = _dense_storages(sim, core.state.numel)
    assert held[9] - held[3] == 9 - 3  # one residual each; the work buffers are shared
