"""The run folder: refusal of used folders, NaN-free logs, atomic files, checkpoint rotation."""

from __future__ import annotations

import json
import math

import pytest
import torch

from sparsgd.runs import NonFiniteRecordError, RunDir, RunDirError, load_checkpoint
from sparsgd.runs.atomic import atomic_write_with
from sparsgd.runs.tensorboard import require_tensorboard


def test_fresh_run_writes_config_log_summary(tmp_path):
    out = tmp_path / "run"
    with RunDir(out) as run:
        run.write_config({"lr": 0.1, "method": "gtopk"})
        run.log({"kind": "step", "step": 1, "train_loss": 2.5})
        run.log({"kind": "epoch", "step": 2, "test_accuracy": 0.5})
        run.write_summary({"steps": 2, "final_test_accuracy": 0.5})
    assert json.loads((out / "config.json").read_text()) == {"lr": 0.1, "method": "gtopk"}
    lines = (out / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
    assert RunDir(out, resume=True).read_summary()["steps"] == 2


def test_log_is_flushed_line_by_line(tmp_path):
    run = RunDir(tmp_path / "run")
    run.log({"step": 1, "x": 1.0})
    # read through another handle while the writer is still open: the line is already there
    assert (tmp_path / "run" / "log.jsonl").read_text() == '{"step": 1, "x": 1.0}\n'
    run.close()


def test_non_empty_folder_refused_unless_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    RunDir(out).write_config({"a": 1})
    with pytest.raises(RunDirError, match=r"not empty.*--resume.*--overwrite"):
        RunDir(out)
    assert RunDir(out, resume=True).read_config() == {"a": 1}


def test_overwrite_removes_only_run_files(tmp_path):
    out = tmp_path / "run"
    run = RunDir(out)
    run.write_config({"a": 1})
    run.log({"step": 1})
    run.save_checkpoint({"w": torch.ones(2)}, step=1)
    run.close()
    (out / "notes.txt").write_text("mine")
    RunDir(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "notes.txt"]
    assert not list((out / "checkpoints").iterdir())


def test_resume_needs_a_run_folder(tmp_path):
    with pytest.raises(RunDirError, match=r"holds no config\.json"):
        RunDir(tmp_path, resume=True)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_log_refuses_non_finite_and_names_the_key(tmp_path, bad):
    run = RunDir(tmp_path / "run")
    with pytest.raises(NonFiniteRecordError, match=r"log record\.stats\.loss"):
        run.log({"step": 3, "stats": {"loss": bad}})
    assert run.read_log() == []  # nothing half-written


def test_log_refuses_tensors(tmp_path):
    with pytest.raises(TypeError, match="got Tensor"):
        RunDir(tmp_path / "run").log({"loss": torch.tensor(1.0)})


def test_checkpoints_rotate_and_round_trip(tmp_path):
    run = RunDir(tmp_path / "run", keep_checkpoints=2)
    assert run.latest_checkpoint() is None
    gen = torch.Generator().manual_seed(5)
    for step in (3, 10, 7):
        run.save_checkpoint(
            {"step": step, "rng": gen.get_state(), "w": torch.full((3,), step)}, step
        )
    names = [p.name for p in run.checkpoints()]
    assert names == ["step-0000000007.pt", "step-0000000010.pt"]
    state = load_checkpoint(run.latest_checkpoint())
    assert state["step"] == 10 and torch.equal(state["w"], torch.full((3,), 10))
    assert torch.equal(state["rng"], gen.get_state())


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def explode(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(target, explode)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_truncate_log_keeps_records_up_to_step(tmp_path):
    run = RunDir(tmp_path / "run")
    for step in range(1, 6):
        run.log({"kind": "step", "step": step})
    run.log({"kind": "note"})
    dropped = run.truncate_log(3)
    assert dropped == 2
    assert [r.get("step") for r in run.read_log()] == [1, 2, 3, None]
    run.log({"kind": "step", "step": 4})  # appending works again after the rewrite
    assert run.read_log()[-1]["step"] == 4


def test_corrupt_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "step-0000000001.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RunDirError, match=r"step-0000000001\.pt cannot be read"):
        load_checkpoint(bad)


def test_tensorboard_missing_is_a_clear_error():
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="pip install 'sparsgd\\[tensorboard\\]'"):
            require_tensorboard()
    else:
        require_tensorboard()  # installed: no error
