"""The simulator's memory is O(d + pushes in flight): a stopping worker's flush (about d
entries) stays in its residual until it arrives, and pending pushes hold sparse messages."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.sim.sim_run import build_simulation
from sparsgd.worker.problem import Problem

pytestmark = pytest.mark.timeout(120)

PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 256),))
CFG = AsyncConfig(mode="sim", lr=0.1, batch_size=8, seed=3, steps=40, density=0.1, workers=8)


def _run_by_events(cfg: AsyncConfig) -> tuple[int, int, torch.Tensor, int]:
    """(most dense messages held at once, most flushes waiting at once, final x, flushed)."""
    core, sim = build_simulation(cfg, PROBLEM)
    core.reopen()
    for w in range(cfg.workers):
        sim._send_pull(w, 0.0)
    sim.started = True
    d = core.state.numel
    most_dense = most_waiting = flushed = 0
    while sim.queue:
        event = sim.queue.pop()
        sim.now = event.time
        flushed += event.kind == "flush"
        sim._handle(event.worker, event.kind)
        held = [m for m, _ in sim.flushes.values() if m is not None]
        held += [p.msg for p, _ in sim.pending.values() if p is not None]
        most_dense = max(most_dense, sum(m.nnz > d // 2 for m in held))
        most_waiting = max(most_waiting, len(sim.flushes))
    assert core.done
    return most_dense, most_waiting, core.state.x, flushed


def test_flushes_wait_as_residuals_not_as_dense_messages():
    most_dense, most_waiting, _, flushed = _run_by_events(CFG)
    assert flushed == CFG.workers
    assert most_waiting > 1  # several workers stopped with their flush on the link at once ...
    assert most_dense == 0  # ... and none of them was held as a dense message meanwhile


def test_event_by_event_run_equals_run():
    core, sim = build_simulation(CFG, PROBLEM)
    sim.run()
    assert torch.equal(_run_by_events(CFG)[2], core.state.x)


def test_flush_bytes_charged_at_stop_match_the_message_sent():
    cfg = replace(CFG, workers=3)
    _, sim = build_simulation(cfg, PROBLEM)
    charged, sent = [], []
    flush_nnz, worker_flush = sim._flush_nnz, type(sim.workers[0]).flush

    def counting_nnz(w: int) -> int:
        charged.append(flush_nnz(w))
        return charged[-1]

    def counting_flush(gw):
        msg = worker_flush(gw)
        sent.append(msg.nnz)
        return msg

    sim._flush_nnz = counting_nnz
    for gw in sim.workers:
        gw.flush = counting_flush.__get__(gw)
    sim.run()
    assert len(charged) == cfg.workers and min(charged) > 0
    assert sorted(charged) == sorted(sent)
