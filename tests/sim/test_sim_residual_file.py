"""``--residual-dir``: the simulated workers' residuals in a file give the run kept in memory,
bit for bit (log, summary, x), resume across the two either way, hold no dense state per
worker in memory, and a bad directory or setting is refused before the run folder exists."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.compress.spill import SpilledResidualMemory
from sparsgd.runs import RunDir, load_checkpoint
from sparsgd.sim.sim_run import build_simulation, run_simulation
from sparsgd.worker.problem import Problem

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("one_torch_thread")]

PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 256),))
CFG = AsyncConfig(
    mode="sim", lr=0.1, batch_size=8, seed=5, steps=40, density=0.1, workers=6, log_every=1
)
SECONDS = ("wall_seconds", "train_seconds", "total_seconds")


def _run(cfg: AsyncConfig) -> tuple[torch.Tensor, list[str], dict]:
    core, sim = build_simulation(cfg, PROBLEM)
    lines: list[str] = []
    core.recorder._write = lambda record: lines.append(json.dumps(record, sort_keys=True))
    sim.run()
    summary = core.finish(0.0, sim_seconds=sim.now)
    return core.state.x, lines, {k: v for k, v in summary.items() if "seconds" not in k}


@pytest.mark.parametrize(
    "settings",
    [
        {},  # top-k
        {"compressor": "dense"},  # every entry sent: the residual is written back as zeros
        {"policy": "dc_asgd", "sparse_downlink": True},
        {"staleness": "poisson:3", "workers": 1},  # drawn staleness: one worker, one slot
    ],
    ids=["topk", "dense", "dc-asgd", "drawn"],
)
def test_residuals_in_a_file_give_the_run_kept_in_memory(tmp_path, settings):
    cfg = replace(CFG, **settings)
    x, log, summary = _run(cfg)
    x_file, log_file, summary_file = _run(replace(cfg, residual_dir=str(tmp_path)))
    assert torch.equal(x.view(torch.int32), x_file.view(torch.int32))
    assert log == log_file and len(log) >= cfg.steps
    assert summary == summary_file
    assert list(tmp_path.iterdir()) == []  # the file was unlinked from the start


def _dense_storages(sim, d: int) -> set[int]:
    """Storages of d entries or more held by the workers' memories and compressors."""
    held = set()
    for gw in sim.workers:
        for obj in (*vars(gw.memory).values(), *vars(gw.compressor).values()):
            if isinstance(obj, torch.Tensor) and obj.numel() >= d:
                held.add(obj.untyped_storage().data_ptr())
    return held


def test_workers_keep_no_dense_state_in_memory(tmp_path):
    held = {}
    for workers in (3, 9):
        core, sim = build_simulation(
            replace(CFG, workers=workers, residual_dir=str(tmp_path)), PROBLEM
        )
        sim.advance(CFG.steps // 2)  # every worker has stepped: its buffers are in use
        assert all(isinstance(gw.memory, SpilledResidualMemory) for gw in sim.workers)
        assert any(bool(gw.memory.e.abs().sum() > 0) for gw in sim.workers)  # e in the file
        held[workers] = _dense_storages(sim, core.state.numel)
    assert len(held[9]) == len(held[3]) <= 1  # at most the one shared compressor's buffer
    assert sim.workers[0].memory.shared.tensor.numel() == core.state.numel  # one p for all


@pytest.mark.parametrize("spill_first", [True, False], ids=["file-then-memory", "memory-then-file"])
def test_a_run_resumes_across_file_and_memory(tmp_path, spill_first):
    spilled = replace(CFG, steps=60, checkpoint_every=20, residual_dir=str(tmp_path))
    in_memory = replace(CFG, steps=60, checkpoint_every=20)
    first, then = (spilled, in_memory) if spill_first else (in_memory, spilled)
    full = run_simulation(in_memory, PROBLEM, tmp_path / "full")
    run_simulation(first, PROBLEM, tmp_path / "cut")
    cut = RunDir(tmp_path / "cut", resume=True)
    oldest, *later = cut.checkpoints()  # the run keeps its last few
    assert load_checkpoint(oldest)["server"]["version"] < first.steps  # before the stop
    for path in later:
        path.unlink()  # as if the run had stopped right after its oldest kept checkpoint
    (tmp_path / "cut" / "summary.json").unlink()
    resumed = run_simulation(then, PROBLEM, tmp_path / "cut", resume=True)
    keep = [k for k in full if k not in SECONDS]
    assert {k: resumed[k] for k in keep} == {k: full[k] for k in keep}
    logs = [(tmp_path / run / "log.jsonl").read_text() for run in ("full", "cut")]
    assert logs[0] == logs[1]


def test_a_bad_residual_dir_is_refused_before_the_run_folder(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"residual_dir must be an existing directory; got"):
        run_simulation(replace(CFG, residual_dir=str(tmp_path / "nope")), PROBLEM, out)
    assert not out.exists()
    with pytest.raises(ValueError, match=r"residual_dir keeps memory 'residual'.*'dgc'"):
        replace(CFG, memory="dgc", residual_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"residual_dir keeps memory 'residual'.*'none'"):
        replace(CFG, memory="none", residual_dir=str(tmp_path))
    with pytest.raises(ValueError, match="use --mode sim"):
        replace(CFG, mode="async", residual_dir=str(tmp_path))
    with pytest.raises(ValueError, match="must be a directory path; got ''"):
        replace(CFG, residual_dir="")


@pytest.mark.parametrize("in_file", [False, True], ids=["memory", "file"])
def test_the_final_checkpoint_keeps_flushed_residuals_as_one_zero_each(tmp_path, in_file):
    """Every worker has flushed when the run ends: its e is zero, and the last checkpoint
    holds one zero for it, not d (W x d floats would otherwise be gathered and written)."""
    cfg = replace(CFG, workers=16, residual_dir=str(tmp_path) if in_file else None)
    run_simulation(cfg, PROBLEM, tmp_path / "run")
    last = RunDir(tmp_path / "run", resume=True).latest_checkpoint()
    state = load_checkpoint(last)
    d = state["server"]["x"].numel()
    saved = [w["memory"]["e"] for w in state["sim"]["workers"]]
    assert len(saved) == 16
    assert all(e.shape == (d,) and e.stride() == (0,) and not e.any() for e in saved)
    assert sum(e.untyped_storage().nbytes() for e in saved) == 16 * 4  # one float each
