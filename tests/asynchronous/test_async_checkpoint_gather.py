"""The real server's checkpoints with its workers' states, in one process and a written order
(tests/asynchronous/async_fleet.py): the states and x belong to one version, a run resumed from
them is the uninterrupted run bit for bit, a worker SSP holds is asked at once, a non-finite
state is refused, and the end of the run cancels a checkpoint under way."""

from __future__ import annotations

import math

import pytest
import torch
from async_fleet import Fleet

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.worker_state import WorkerStateError
from sparsgd.runs import RunDir, load_checkpoint

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("one_torch_thread")]

CFG = AsyncConfig(
    mode="async", workers=2, steps=1000, lr=0.1, batch_size=16, density=0.1, checkpoint_every=2
)


def _checkpoints(folder) -> list[dict]:
    return [load_checkpoint(p) for p in RunDir(folder, resume=True).checkpoints()]


def test_the_states_and_x_of_a_checkpoint_belong_to_one_version(tmp_path):
    fleet = Fleet.start(CFG, tmp_path)
    fleet.pull(0)
    fleet.pull(1)  # both computing on version 0
    fleet.cycle(0)  # version 1; worker 0 computes on it
    fleet.push(0)  # version 2: a checkpoint is due; nobody is asked before its next PULL
    assert fleet.gather.gathering and fleet.seen[-1] == (0, "MODEL")
    e0 = fleet.workers[0].memory.e.clone()  # after its last push, before any new step
    fleet.pull(0)
    assert fleet.seen[-1] == (0, "SAVE") and not _checkpoints(tmp_path)  # worker 1 missing
    fleet.push(1)  # computed on version 0 before the checkpoint fell due: applied (tau 2)
    x3, e1 = fleet.core.state.x.clone(), fleet.workers[1].memory.e.clone()
    fleet.pull(1)  # the last state: saved at version 3, then both pulls answered
    (saved,) = _checkpoints(tmp_path)
    assert saved["server"]["version"] == 3 and torch.equal(saved["server"]["x"], x3)
    assert [w for w, _ in saved["workers"]] == [0, 1]
    for (w, state), e in zip(saved["workers"], (e0, e1), strict=True):
        assert torch.equal(state["gradient"]["memory"]["e"], e)
        assert state["version"] == {0: 1, 1: 0}[w] and state["pushes"] == {0: 2, 1: 1}[w]
    assert fleet.seen[-2:] == [(0, "MODEL"), (1, "MODEL")]
    assert fleet.version == [3, 3] and not fleet.gather.gathering
    # every STATE counted apart from training traffic
    assert all(b > 4 * fleet.core.state.numel for b in fleet.core.recorder.counts["state_bytes"])


# worker order of PUSH-then-PULL cycles; worker 1 is the slower one in the second script
SCRIPTS = {
    "alternating": [0, 1] * 14,
    "uneven": [0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1],
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_resumed_run_is_the_uninterrupted_run_bit_for_bit(tmp_path, script):
    ops = SCRIPTS[script]
    full = Fleet.start(CFG, tmp_path / "full")
    cut = Fleet.start(CFG, tmp_path / "cut")
    for fleet in (full, cut):
        fleet.pull(0)
        fleet.pull(1)
    for op in ops:
        full.cycle(op)
    # the cut run stops right after a checkpoint taken mid-run, as a crash would leave it
    stop = None
    for i, op in enumerate(ops):
        known = RunDir(tmp_path / "cut", resume=True).latest_step()
        cut.cycle(op)
        if RunDir(tmp_path / "cut", resume=True).latest_step() != known and i >= 8:
            stop = i
            break
    assert stop is not None, "no checkpoint was completed mid-script"
    resumed = Fleet.resume(CFG, tmp_path / "cut")
    assert resumed.gather.restore.keys() == {0, 1}
    resumed.pull(0)
    resumed.pull(1)
    assert resumed.seen[:4] == [(0, "STATE"), (0, "MODEL"), (1, "STATE"), (1, "MODEL")]
    for op in ops[stop + 1 :]:
        resumed.cycle(op)

    a, b = full.core.state, resumed.core.state
    assert (a.version, a.clocks, a.staleness) == (b.version, b.clocks, b.staleness)
    assert torch.equal(a.x, b.x)
    for w in range(CFG.workers):
        assert torch.equal(full.workers[w].memory.e, resumed.workers[w].memory.e)
        assert full.workers[w].stream.batches == resumed.workers[w].stream.batches
        assert full.pushes[w] == resumed.pushes[w]
    logs = [RunDir(tmp_path / n, resume=True).read_log() for n in ("full", "cut")]
    (record,) = [r for r in logs[1] if r["kind"] == "resume"]
    assert record["restored_workers"] == [0, 1] and record["dropped"] is None
    assert record["dropped_residual_norm"] == [0.0, 0.0]
    assert _untimed(logs[0]) == _untimed([r for r in logs[1] if r["kind"] != "resume"])


def _untimed(records: list[dict]) -> list[dict]:
    """The records without their measured durations (time_*_s: wall clock, not state)."""
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in records]


def test_a_worker_held_by_ssp_is_asked_at_once_and_held_again_after(tmp_path):
    cfg = AsyncConfig(**{**CFG.__dict__, "workers": 3, "ssp_bound": 0})
    fleet = Fleet.start(cfg, tmp_path)
    for w in range(3):
        fleet.pull(w)
    fleet.cycle(0)  # version 1, clocks [1, 0, 0]: worker 0's pull is held
    assert fleet.core.held == [0]
    fleet.push(1)  # version 2: due; the held worker is asked now
    assert fleet.seen[-1] == (0, "SAVE") and fleet.core.held == []
    fleet.pull(1)
    fleet.cycle(2)  # version 3: the last state; saved, then the pulls answered
    (saved,) = _checkpoints(tmp_path)
    assert saved["server"]["version"] == 3 and [w for w, _ in saved["workers"]] == [0, 1, 2]
    assert fleet.version == [3, 3, 3]  # clocks [1, 1, 1]: SSP lets all of them go
    # one PULL is one uplink message, also for the worker that was held and asked
    assert fleet.core.recorder.counts["uplink_messages"] == [3, 3, 3]


def test_a_state_with_nan_is_refused_and_its_worker_stopped(tmp_path):
    fleet = Fleet.start(CFG, tmp_path)
    fleet.pull(0)
    fleet.pull(1)
    fleet.cycle(0)
    fleet.push(1)  # version 2: due
    fleet.workers[1].memory.e[3] = float("nan")
    with pytest.raises(WorkerStateError, match=r"1's state: memory\.e holds 1 non-finite"):
        fleet.workers[1].state_dict()  # what the simulator saves is checked too
    fleet.pull(1)  # SAVE -> a state with NaN -> refused: STOP; its flush is refused as well
    assert fleet.seen[-3:-1] == [(1, "SAVE"), (1, "STOP")] and 1 in fleet.core.retired
    (death,) = fleet.core.recorder.deaths
    assert death["worker"] == 1 and death["reason"].startswith("state refused: worker 1's")
    assert "non-finite" in death["reason"]
    assert fleet.core.state.rejected["non_finite"] == 1  # the flush of a NaN residual
    fleet.pull(0)  # the last live worker's state completes the checkpoint without worker 1
    (saved,) = _checkpoints(tmp_path)
    assert [w for w, _ in saved["workers"]] == [0] and saved["retired"] == [1]


def test_the_end_of_the_run_cancels_a_checkpoint_under_way(tmp_path):
    cfg = AsyncConfig(**{**CFG.__dict__, "steps": 3})
    fleet = Fleet.start(cfg, tmp_path)
    fleet.pull(0)
    fleet.pull(1)
    fleet.cycle(0)
    fleet.push(0)  # version 2: due
    fleet.pull(0)  # parked
    fleet.push(1)  # version 3 = --steps: the checkpoint is cancelled, worker 0 stopped
    assert not fleet.gather.gathering and fleet.stopped == {0}
    fleet.pull(1)
    assert fleet.stopped == {0, 1} and fleet.core.done
    assert not _checkpoints(tmp_path)  # the one at the end (server.py) holds everything


def _run_past_a_checkpoint(tmp_path) -> RunDir:
    """Two workers, two cycles each (a checkpoint is taken on the way); the run's folder."""
    fleet = Fleet.start(CFG, tmp_path)
    fleet.pull(0)
    fleet.pull(1)
    for op in (0, 1, 0, 1):
        fleet.cycle(op)
    return RunDir(tmp_path, resume=True)


def test_an_older_checkpoint_resumes_and_records_what_it_lacks(tmp_path):
    run = _run_past_a_checkpoint(tmp_path)
    path = run.latest_checkpoint()
    checkpoint = load_checkpoint(path)
    norms = checkpoint["recorder"]["residual_norm"]
    assert all(n > 0 for n in norms)
    del checkpoint["workers"]  # as written before worker states were kept,
    del checkpoint["recorder"]["counts"]["state_bytes"]  # and before their bytes were counted
    run.save_checkpoint(checkpoint, checkpoint["server"]["version"])
    resumed = Fleet.resume(CFG, tmp_path)
    assert resumed.gather.restore == {}
    (record,) = resumed.core.recorder.resumes
    assert record["restored_workers"] == [] and record["dropped_residual_norm"] == norms
    assert "holds no worker states" in record["dropped"]
    resumed.pull(0)  # a fresh worker: no STATE, just the model
    assert resumed.seen == [(0, "MODEL")] and not math.isnan(resumed.core.state.x.sum())
    assert resumed.core.recorder.counts["state_bytes"] == [0, 0]


def test_a_saved_state_that_is_not_finite_is_not_restored(tmp_path):
    run = _run_past_a_checkpoint(tmp_path)
    checkpoint = load_checkpoint(run.latest_checkpoint())
    checkpoint["workers"][1][1]["gradient"]["memory"]["e"][0] = float("inf")
    run.save_checkpoint(checkpoint, checkpoint["server"]["version"])
    resumed = Fleet.resume(CFG, tmp_path)
    assert resumed.gather.restore.keys() == {0}
    (record,) = resumed.core.recorder.resumes
    assert record["restored_workers"] == [0]
    assert record["dropped_residual_norm"][0] == 0.0 and record["dropped_residual_norm"][1] > 0
    assert (
        "not restored: worker 1's state: gradient.memory.e holds 1 non-finite"
        in (record["dropped"])
    )
