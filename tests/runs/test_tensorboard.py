"""TensorBoard events of the three modes, read back with TensorBoard's own reader.

Each run writes ``DIR/tensorboard``; the test reads it with ``EventAccumulator`` and checks the
tags docs/training.md (TensorBoard) promises, that the last cumulative byte counts equal
``summary.json``'s, and that the hparams plugin holds the settings and final metrics. The time
split of async and sim (asynchronous.run_record) is checked against what the run must have
spent: the simulator's alpha-beta clock, the injected delay, the server's loop.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.real_run import run_async
from sparsgd.sim.sim_run import run_simulation
from sparsgd.worker.problem import Problem

pytestmark = pytest.mark.timeout(180)

PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 256),))
ASYNC = AsyncConfig(
    lr=0.1, batch_size=16, seed=3, steps=24, density=0.1, log_every=4, tensorboard=True
)
REMOVED = {"start/step", "step/step", "epoch/epoch", "step/epoch"}  # the old useless tags
WORKER_TIME_S = 0.1  # AsyncConfig's default --worker-time constant:0.1 (no slowdown)
ALPHA, BETA = 1e-3, 1e-8  # --network of the drawn-staleness run: s per message, s per byte
DELAY_S = 0.02  # the async run's --delay: every worker cycle sleeps this long
CLOCK_REL = 1e-9  # sums of float64 simulated seconds in another order
FLOAT32_REL = 1e-6  # TensorBoard stores scalars as float32


def _events(out) -> EventAccumulator:
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"histograms": 0})  # all
    acc.Reload()
    return acc


def _last(acc: EventAccumulator, tag: str) -> float:
    return acc.Scalars(tag)[-1].value


def _hparams(acc: EventAccumulator) -> plugin_data_pb2.HParamsPluginData:
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    return plugin_data_pb2.HParamsPluginData.FromString(content)


def _updates(out) -> list[dict]:
    """The ``update`` records of log.jsonl (a worker's final flush included)."""
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "update"]


def _check_time_split(acc: EventAccumulator, updates: list[dict], parts: set[str]) -> None:
    """Tags time/<part>_s for ``parts`` and no other part; each point is its record's value."""
    tags = {t for t in acc.Tags()["scalars"] if t.startswith("time/") and t != "time/seconds"}
    assert tags == {f"time/{part}_s" for part in parts}
    for part in parts:
        logged = {r["step"]: r[f"time_{part}_s"] for r in updates if f"time_{part}_s" in r}
        shown = {e.step: e.value for e in acc.Scalars(f"time/{part}_s")}
        assert shown == pytest.approx(logged, rel=FLOAT32_REL)


def _check_common(acc: EventAccumulator, summary: dict, workers: int) -> None:
    tags = set(acc.Tags()["scalars"])
    assert not tags & REMOVED
    for rank in range(workers):
        for name in ("sent_total", "recv_total", "sent_per_step", "recv_per_step"):
            assert f"bytes/{name}/rank{rank}" in tags, name
        total = _last(acc, f"bytes/sent_total/rank{rank}")
        assert total == pytest.approx(summary["bytes_sent_per_rank"][rank], rel=1e-6)
        per_step = acc.Scalars(f"bytes/sent_per_step/rank{rank}")
        steps = [0] + [e.step for e in per_step]
        summed = sum(e.value * (b - a) for e, a, b in zip(per_step, steps, steps[1:], strict=False))
        logged = {e.step: e.value for e in acc.Scalars(f"bytes/sent_total/rank{rank}")}
        assert summed == pytest.approx(logged[per_step[-1].step], rel=1e-6)  # per step adds up
        assert summed > 0
    assert {"traffic/ratio_to_dense", "density/achieved", "train/loss", "test/accuracy"} <= tags
    assert 0 < _last(acc, "traffic/ratio_to_dense") < 1  # sparse: less than dense
    assert _last(acc, "final/test_accuracy") == pytest.approx(summary["final_test_accuracy"])
    session = _hparams(acc).session_start_info
    assert session.hparams["density"].number_value == pytest.approx(summary["density"])


@pytest.mark.multiprocess
def test_sync_events(sync_cli_run):
    # the suite's end-to-end `sparsgd train ... --tensorboard` run (tests/conftest.py): 2
    # workers, gTop-k at density 0.01, 6 steps, a record every 2 steps and at the end
    out, _ = sync_cli_run
    summary = json.loads((out / "summary.json").read_text())
    acc = _events(out)
    _check_common(acc, summary, workers=2)
    tags = set(acc.Tags()["scalars"])
    assert {f"time/{t}_s" for t in ("compute", "compress", "comm", "apply")} <= tags
    assert {"residual_norm/rank0", "residual_norm/rank1", "density/scheduled"} <= tags
    recv = _last(acc, "bytes/recv_total/rank1")
    assert recv == pytest.approx(summary["bytes_recv_per_rank"][1], rel=1e-6)
    ratio = _last(acc, "final/traffic_ratio_to_dense")
    assert ratio == pytest.approx(summary["traffic_ratio_to_dense"])
    steps = [e.step for e in acc.Scalars("bytes/sent_total/rank0")]
    assert steps == [2, 4, 6]  # one point per log record, no duplicate from the evaluation


def test_sim_events(tmp_path):
    out = tmp_path / "sim"
    torch.set_num_threads(1)
    summary = run_simulation(ASYNC, PROBLEM, out)
    acc = _events(out)
    _check_common(acc, summary, workers=ASYNC.workers)
    assert "staleness/tau" in acc.Tags()["histograms"]
    histogram = acc.Histograms("staleness/tau")
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    updates = _updates(out)
    counted = sum(h.histogram_value.num for h in histogram)
    assert counted == sum(len(r["taus"]) for r in updates)  # every logged tau, once
    assert max(h.histogram_value.max for h in histogram) == max(max(r["taus"]) for r in updates)
    recv = _last(acc, "bytes/recv_total/rank0")
    assert recv == summary["bytes_downlink_per_worker"][0]
    clocked = [r["seconds"] for r in records if "seconds" in r]  # updates and evaluations
    assert _last(acc, "time/seconds") == pytest.approx(clocked[-1], rel=1e-6)  # float32
    # the simulated server takes no time: compute and comm of the simulated workers only
    _check_time_split(acc, updates, {"compute", "comm"})
    alpha = 0.436e-3  # the default network, 1gbe: the pull and the model are two messages
    timed = [r for r in updates if "time_compute_s" in r]
    assert [r for r in updates if r not in timed] == updates[-1:]  # the flushes: no cycle
    for r in timed:
        assert r["time_compute_s"] == pytest.approx(WORKER_TIME_S, rel=CLOCK_REL)
        assert r["time_comm_s"] >= 2 * alpha


def test_sim_time_split_is_the_network_clock(tmp_path):
    """Drawn staleness: one worker in series, each update one cycle of pull, drawn compute
    time and push, so a record's (compute + comm) x cycles is the clock's advance since the
    previous record, and its comm x cycles is alpha per message plus beta per byte moved."""
    out = tmp_path / "drawn"
    torch.set_num_threads(1)
    cfg = replace(ASYNC, staleness="constant:2", network=f"{ALPHA},{BETA}", workers=1)
    run_simulation(cfg, PROBLEM, out)
    updates = [r for r in _updates(out) if not r["flush"]]
    assert [r["step"] for r in updates] == list(range(4, 25, 4))
    before = {"seconds": 0.0, "bytes_sent_total": [0], "bytes_recv_total": [0]}
    for r in updates:
        cycles = len(r["taus"])  # one update per cycle: every gradient was finite
        assert r["time_compute_s"] == pytest.approx(WORKER_TIME_S, rel=CLOCK_REL)
        spent = (r["time_compute_s"] + r["time_comm_s"]) * cycles
        assert spent == pytest.approx(r["seconds"] - before["seconds"], rel=CLOCK_REL)
        moved = sum(r[k][0] - before[k][0] for k in ("bytes_sent_total", "bytes_recv_total"))
        wire = 2 * cycles * ALPHA + BETA * moved
        assert r["time_comm_s"] * cycles == pytest.approx(wire, rel=CLOCK_REL)
        before = r
    _check_time_split(_events(out), updates, {"compute", "comm"})


@pytest.mark.multiprocess
def test_async_events(tmp_path):
    out = tmp_path / "async"
    cfg = AsyncConfig(
        mode="async",
        workers=2,
        lr=0.1,
        batch_size=16,
        steps=24,
        density=0.1,
        log_every=4,
        timeout_s=60.0,
        tensorboard=True,
        delay=f"constant:{DELAY_S}",
    )
    summary = run_async(cfg, PROBLEM, out)
    acc = _events(out)
    _check_common(acc, summary, workers=2)
    assert "staleness/tau" in acc.Tags()["histograms"]
    updates = _updates(out)
    _check_time_split(acc, updates, {"compute", "comm", "apply", "wait"})
    for r in updates:
        assert r["time_compute_s"] >= DELAY_S  # the gradient, then the injected delay
        assert r["time_comm_s"] > 0 and r["time_apply_s"] > 0 and r["time_wait_s"] >= 0
    # the server's parts are seconds per update: summed over the updates, within its loop
    server = sum((r["time_apply_s"] + r["time_wait_s"]) * len(r["taus"]) for r in updates)
    assert server <= summary["wall_seconds"]
