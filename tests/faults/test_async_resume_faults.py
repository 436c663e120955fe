"""A real asynchronous run resumed from a checkpoint taken mid-run (issue 13, item 7): the
checkpoint holds every live worker's residual, generators and counters, taken at its version,
and the new worker processes get them back.

* One worker: no arrival order to choose, so the run stopped and resumed is the uninterrupted
  one, bit for bit (x, every log record but its wall-clock seconds, the summary).
* Two workers: later arrival orders are the operating system's, so the test resumes with
  nothing left to train: each worker pushes back exactly what it holds (its flush), and x
  lands on x_ckpt - lr e_a - lr e_b (vanilla policy, in arrival order) bit for bit: nothing
  of any residual is lost or added across the resume.
* A checkpoint written before worker states were kept still resumes, and records the
  residual norms it drops.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.real_run import run_async
from sparsgd.cli.main import main
from sparsgd.compress.message import dense_bytes, message_bytes
from sparsgd.runs import RunDir, load_checkpoint
from sparsgd.worker.problem import Problem

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(240)]

SMALL = ["--model", "logreg", "--dataset", "synthetic", "--batch-size", "16", "--lr", "0.1"]
PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 256),))
TWO = AsyncConfig(
    mode="async", workers=2, steps=40, lr=0.1, batch_size=16, density=0.1,
    checkpoint_every=6, timeout_s=60.0,
)  # fmt: skip
NOT_RUN = ("wall_seconds", "train_seconds", "total_seconds", "seconds", "resumes")


def _cut(src, dst, keep) -> dict:
    """``dst``: a copy of the run ``src`` as a crash right after the checkpoint ``keep`` (a
    predicate on checkpoints) would leave it; returns that checkpoint."""
    shutil.copytree(src, dst)
    run = RunDir(dst, resume=True)
    saved = [(p, load_checkpoint(p)) for p in run.checkpoints()]
    kept = [i for i, (_, ck) in enumerate(saved) if keep(ck)]
    assert kept, "no checkpoint of the kind was taken"
    for path, _ in saved[kept[-1] + 1 :]:
        path.unlink()
    (dst / "summary.json").unlink()
    return saved[kept[-1]][1]


def _timeless(records: list[dict]) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in NOT_RUN and not k.startswith("time_")}
        for r in records
    ]


def test_one_worker_stopped_and_resumed_is_the_uninterrupted_run(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    argv = ["train", "--mode", "async", *SMALL, "--workers", "1", "--steps", "24"]
    argv += ["--density", "0.1", "--checkpoint-every", "8", "--log-every", "1"]
    assert main([*argv, "--out", str(full)]) == 0
    mid = _cut(full, cut, lambda ck: ck["server"]["version"] == 16)
    assert [w for w, _ in mid["workers"]] == [0]
    assert main(["train", "--mode", "async", "--resume", str(cut)]) == 0

    ends = [load_checkpoint(RunDir(f, resume=True).latest_checkpoint()) for f in (full, cut)]
    assert torch.equal(ends[0]["server"]["x"], ends[1]["server"]["x"])
    logs = [RunDir(f, resume=True).read_log() for f in (full, cut)]
    (resume,) = [r for r in logs[1] if r["kind"] == "resume"]
    assert resume["restored_workers"] == [0] and resume["dropped"] is None
    assert _timeless(logs[0]) == _timeless([r for r in logs[1] if r["kind"] != "resume"])
    summaries = [RunDir(f, resume=True).read_summary() for f in (full, cut)]
    assert _timeless([summaries[0]]) == _timeless([summaries[1]])


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """A two-worker run with checkpoints every 6 updates (read only)."""
    out = tmp_path_factory.mktemp("two") / "run"
    summary = run_async(TWO, PROBLEM, out)
    assert summary["dead_workers"] == [] and summary["steps"] >= TWO.steps
    return out


def _both_live(ck: dict) -> bool:
    return [w for w, _ in ck.get("workers", [])] == [0, 1]


def test_every_residual_comes_back_exactly(two_workers, tmp_path):
    out = tmp_path / "run"
    mid = _cut(two_workers, out, _both_live)
    version, x = mid["server"]["version"], mid["server"]["x"]
    states = dict(mid["workers"])
    residuals = {w: s["gradient"]["memory"]["e"] for w, s in states.items()}
    assert all(bool(e.abs().sum() > 0) for e in residuals.values())
    # the run already stands at --steps: every new worker gets its state, then STOP, flushes
    summary = run_async(replace(TWO, steps=version), PROBLEM, out, resume=True)

    (resume,) = summary["resumes"]
    assert resume["restored_workers"] == [0, 1] and resume["dropped"] is None
    assert resume["dropped_residual_norm"] == [0.0, 0.0]
    flushes = [r for r in RunDir(out, resume=True).read_log() if r.get("step", 0) > version]
    flushes = [r for r in flushes if r["kind"] == "update"]
    assert [r["flush"] for r in flushes] == [True, True]
    order = [r["worker"] for r in flushes]
    assert sorted(order) == [0, 1]
    expected = x
    d = x.numel()
    for w in order:  # vanilla: x <- x - lr c, each flush c = the whole residual
        k = int(torch.count_nonzero(residuals[w]))  # its entries; all d when the wire is dense
        sent = k if message_bytes(k, d) < dense_bytes(d) else d
        assert flushes[order.index(w)]["nnz"] == sent
        expected = expected.add(residuals[w], alpha=-TWO.lr)
    end = load_checkpoint(RunDir(out, resume=True).latest_checkpoint())
    assert end["server"]["version"] == version + 2
    assert torch.equal(end["server"]["x"], expected)
    # the counters came back too: each worker reports the pushes it sent over the whole run
    assert summary["pushes_sent_reported_per_worker"] == [states[w]["pushes"] for w in (0, 1)]
    assert summary["flushes_per_worker"] == [1, 1]


def test_an_older_checkpoint_resumes_recording_the_residuals_it_drops(two_workers, tmp_path):
    out = tmp_path / "run"
    mid = _cut(two_workers, out, _both_live)
    del mid["workers"]  # what a checkpoint written before worker states were kept holds
    run = RunDir(out, resume=True)
    path = run.save_checkpoint(mid, mid["server"]["version"])
    expected = [float(n) for n in mid["recorder"]["residual_norm"]]
    assert all(n > 0 for n in expected)  # top-k with density 0.1 leaves a residual

    assert main(["train", "--mode", "async", "--resume", str(out), "--steps", "50"]) == 0
    summary = run.read_summary()
    (record,) = summary["resumes"]
    assert record["step"] == mid["server"]["version"] and record["checkpoint"] == path.name
    assert record["dropped_residual_norm"] == expected and record["restored_workers"] == []
    assert "holds no worker states" in record["dropped"]
    logged = [r for r in run.read_log() if r["kind"] == "resume"]
    assert logged == [{"kind": "resume", **record}]
    assert summary["steps"] >= 50 and summary["dead_workers"] == []
