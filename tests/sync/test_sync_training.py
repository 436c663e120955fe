"""End-to-end S-SGD runs through the Python API: run folder, same seed same run, exact resume.

Each test runs an uninterrupted run A of 2 workers and a run B resumed from a checkpoint taken
mid-way: the classification test stops a fresh run B early (so it also checks that the same
seed gives the same run), the language-model test cuts a copy of A back to an early
checkpoint. B's records and final state must equal A's bit for bit, apart from wall-clock
fields: a checkpoint holds everything (residuals, DGC momentum, random generators of data
order and selection, warm-up position, LSTM hidden state).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import replace

import pytest
import torch

from sparsgd.runs import RunDir, load_checkpoint
from sparsgd.sync.config import SyncConfig
from sparsgd.sync.train import resume, train

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(300), pytest.mark.slow]
CLOCK_FIELDS = ("wall_s", "time_compute_s", "time_compress_s", "time_comm_s", "time_apply_s")
# byte counts that include the input check (see check_resumed_equals_uninterrupted)
CHECK_DEPENDENT = {
    "bytes_sent",
    "bytes_recv",
    "check_bytes_sent",
    "bytes_sent_total",
    "bytes_recv_total",
}
SUMMARY_CHECK_DEPENDENT = (
    "traffic_ratio_to_dense",
    "bytes_sent_per_rank",
    "bytes_recv_per_rank",
    "check_bytes_sent_per_rank",
)
SUMMARY_CLOCK_FIELDS = (
    "wall_seconds",
    "train_seconds",
    "total_seconds",
    "seconds_compute",
    "seconds_compress",
    "seconds_comm",
    "seconds_apply",
)


def trajectory(out) -> list[dict]:
    """The step and epoch records without the fields that depend on the wall clock."""
    records = RunDir(out, resume=True).read_log()
    kept = [r for r in records if r["kind"] in ("step", "epoch")]
    return [{k: v for k, v in r.items() if k not in CLOCK_FIELDS} for r in kept]


def final_state(out) -> dict:
    return load_checkpoint(RunDir(out, resume=True).latest_checkpoint())


def assert_same_state(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    for key, value in a["shared"]["model"].items():
        assert torch.equal(value, b["shared"]["model"][key]), key
    for rank, (ra, rb) in enumerate(zip(a["ranks"], b["ranks"], strict=True)):
        for key, value in ra["memory"].items():
            assert torch.equal(value, rb["memory"][key]), f"rank {rank} memory {key}"
        assert torch.equal(
            ra["batches"].get("perm", torch.empty(0)), rb["batches"].get("perm", torch.empty(0))
        )


def run_and_resume(tmp_path, config: SyncConfig, stop_at: int):
    """A: uninterrupted; B: a fresh run of ``stop_at`` steps, resumed to A's length."""
    a = replace(config, out=str(tmp_path / "a"))
    summary_a = train(a)
    b = replace(config, out=str(tmp_path / "b"), steps=stop_at)
    train(b)
    summary_b = resume(b.out, steps=config.steps)
    return a.out, b.out, summary_a, summary_b


def resume_from_copy(tmp_path, config: SyncConfig, checkpoint_step: int):
    """A: uninterrupted; B: a copy of A cut back to its checkpoint at ``checkpoint_step``."""
    a = replace(config, out=str(tmp_path / "a"))
    summary_a = train(a)
    b = tmp_path / "b"
    shutil.copytree(a.out, b)
    (b / "summary.json").unlink()
    for path in (b / "checkpoints").glob("step-*.pt"):
        if int(path.stem.split("-")[1]) > checkpoint_step:
            path.unlink()
    summary_b = resume(str(b))
    return a.out, str(b), summary_a, summary_b


def check_resumed_equals_uninterrupted(out_a, out_b, summary_a, summary_b) -> None:
    """Bit for bit, byte counts aside: when the collectives run their input check's handshake
    (and the flagged attempt before one) depends on each collective's own history (its first
    call, a density change), and a resumed run starts new collectives, so the bytes of the
    windows around the resume differ by those checks. Model, losses, densities, residual
    norms and the final state of every rank must be equal."""
    records_a, records_b = trajectory(out_a), trajectory(out_b)
    assert len(records_a) == len(records_b)
    for ra, rb in zip(records_a, records_b, strict=True):
        differ = {k for k in ra if ra[k] != rb[k]}
        assert differ <= CHECK_DEPENDENT, differ
    assert_same_state(final_state(out_a), final_state(out_b))
    for key, value in summary_a.items():
        if key not in SUMMARY_CLOCK_FIELDS + SUMMARY_CHECK_DEPENDENT:
            assert summary_b[key] == value, key


def test_classification_run_folder_and_exact_resume(tmp_path):
    config = SyncConfig(
        out="",
        model="fnn3",
        hidden_size=16,
        dataset="digits",
        workers=2,
        method="topk",
        compressor="randomk",  # its generator must be restored
        memory="dgc",  # u and v must be restored
        density=0.05,
        density_warmup=1.0,
        lr=0.05,
        warmup_epochs=0.5,
        lr_decay_epochs=(1.0,),
        batch_size=64,  # 12 steps per epoch on 718 samples per worker
        steps=14,
        log_every=3,
        checkpoint_every=4,
        verify_every=1,  # every step: all ranks' parameter digests must agree
        progress=False,
    )
    out_a, out_b, summary_a, summary_b = run_and_resume(tmp_path, config, stop_at=6)
    check_resumed_equals_uninterrupted(out_a, out_b, summary_a, summary_b)

    run = RunDir(out_a, resume=True)
    assert run.read_config()["method"] == "topk"
    records = run.read_log()
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["step"] for r in steps] == [3, 6, 9, 12]
    assert [r["step"] for r in epochs] == [12]
    final = [r for r in records if r["kind"] == "final"]  # the run stops mid-epoch
    assert [r["step"] for r in final] == [14]
    for r in steps:
        assert len(r["bytes_sent"]) == 2 and all(b > 0 for b in r["bytes_sent"])
        assert len(r["residual_norm"]) == 2 and math.isfinite(r["train_loss"])
        assert 0 < r["achieved_density"] <= 1
        assert all(r[f] >= 0 for f in CLOCK_FIELDS[1:])
    assert steps[0]["density"] == 0.25  # first stage of the density warm-up
    assert steps[-1]["density"] == config.density  # warm-up over after one epoch
    assert steps[-1]["lr"] == config.lr  # step 12 is the last step of epoch 0
    assert final[0]["lr"] == pytest.approx(config.lr * config.lr_decay_factor)  # decayed at 1
    assert 0 <= final[0]["test_accuracy"] <= 1
    assert summary_a["final_test_accuracy"] == final[0]["test_accuracy"]
    assert summary_a["steps"] == 14 and summary_a["skipped_nonfinite_steps"] == 0
    assert summary_a["bytes_sent_per_rank"] == final[0]["bytes_sent_total"]
    assert 0 < max(summary_a["bytes_sent_per_rank"]) < summary_a["dense_bytes_per_rank"]
    assert [p.name for p in run.checkpoints()] == [
        "step-0000000008.pt",
        "step-0000000012.pt",
        "step-0000000014.pt",
    ]


def test_language_model_perplexity_and_exact_resume(tmp_path):
    config = SyncConfig(
        out="",
        model="lstm",
        hidden_size=16,
        dataset="synthetic-lm",
        max_tokens=2000,
        workers=2,
        method="gtopk",
        density=0.05,
        lr=1.0,
        momentum=0.0,
        clip=0.5,
        batch_size=4,  # 1000 tokens per worker: (250, 4), 25 windows of 10 per epoch
        bptt=10,
        steps=8,
        log_every=2,
        checkpoint_every=3,
        verify_every=1,
        progress=False,
    )
    out_a, out_b, summary_a, summary_b = resume_from_copy(tmp_path, config, checkpoint_step=3)
    check_resumed_equals_uninterrupted(out_a, out_b, summary_a, summary_b)
    state = final_state(out_a)
    assert all(r["task"]["hidden"] is not None for r in state["ranks"])  # carried hidden state
    ppl = summary_a["final_test_perplexity"]
    assert ppl == pytest.approx(math.exp(summary_a["final_test_loss"]))
    assert 1 < ppl < float("inf")
