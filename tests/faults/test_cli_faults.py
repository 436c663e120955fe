"""Faults an operator meets at the command line (issue 13, items 2 and 6), each bounded in
time: options of another mode, bad model sizes, resuming the wrong mode, a finished run, a
damaged latest checkpoint, and a run folder another process is writing."""

from __future__ import annotations

import json

import pytest

from sparsgd.cli.main import main
from sparsgd.runs import RunDir

pytestmark = pytest.mark.timeout(240)

SIM = ["--model", "logreg", "--dataset", "synthetic", "--batch-size", "16", "--workers", "2"]


@pytest.mark.parametrize(
    ("mode", "option", "named"),
    [
        ("sync", ["--staleness", "constant:1"], "--staleness applies to --mode sim only"),
        ("sync", ["--policy", "dc_asgd"], "--policy applies to --mode async | sim only"),
        ("sync", ["--ssp-bound", "2"], "--ssp-bound applies to --mode async | sim only"),
        ("sync", ["--slowdown", "1,2"], "--slowdown applies to --mode async | sim only"),
        ("sim", ["--delay", "constant:0.1"], "--delay applies to --mode async only"),
        ("async", ["--worker-time", "constant:0.2"], "--worker-time applies to --mode sim only"),
        ("async", ["--network", "10gbe"], "--network applies to --mode sim only"),
        ("sim", ["--weight-decay", "0.1"], "--weight-decay applies to --mode sync only"),
        ("async", ["--residual-dir", "."], "--residual-dir applies to --mode sim only"),
    ],
)
def test_an_option_of_another_mode_is_refused_before_anything_starts(
    tmp_path, capsys, mode, option, named
):
    out = tmp_path / "run"
    assert main(["train", "--mode", mode, *option, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert named in err and f"got it with --mode {mode}" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--residual-dir", "/nonexistent-sparsgd"], "residual_dir must be an existing directory"),
        (["--residual-dir", ".", "--memory", "dgc"], "keeps memory 'residual' in a file"),
    ],
)
def test_a_bad_residual_dir_is_refused_before_anything_starts(tmp_path, capsys, option, named):
    out = tmp_path / "run"
    assert main(["train", "--mode", "sim", *option, "--out", str(out)]) == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


def test_two_options_of_another_mode_are_named_together(tmp_path, capsys):
    out = tmp_path / "run"
    options = ["--staleness", "constant:1", "--network", "10gbe"]
    assert main(["train", "--mode", "sync", *options, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--staleness, --network apply to --mode sim only; got them with --mode sync" in err
    assert not out.exists()


@pytest.mark.parametrize("mode", ["sync", "sim", "async"])
def test_a_bad_model_size_leaves_no_run_folder(tmp_path, capsys, mode):
    out = tmp_path / "run"
    argv = ["train", "--mode", mode, "--hidden-size", "0", "--steps", "2", "--out", str(out)]
    assert main(argv) == 2
    assert "hidden_size must be a positive integer; got 0" in capsys.readouterr().err
    assert not out.exists()


def _sim_run(out, *extra: str) -> None:
    argv = ["train", "--mode", "sim", *SIM, "--steps", "6", "--checkpoint-every", "2"]
    assert main([*argv, *extra, "--out", str(out)]) == 0


def test_resume_refusals_name_the_mode_and_the_version(tmp_path, capsys):
    out = tmp_path / "run"
    _sim_run(out)
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 2  # --mode sync by default
    err = capsys.readouterr().err
    assert "cannot resume" in err and "holds a --mode sim run" in err
    assert f"--mode sim --resume {out}" in err and "unknown keys" not in err
    assert main(["train", "--mode", "async", "--resume", str(out)]) == 2
    assert "holds a --mode sim run; got --mode async" in capsys.readouterr().err
    assert main(["train", "--mode", "sim", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    version = RunDir(out, resume=True).latest_step()  # 6 updates, then the workers' flushes
    assert (
        "--mode sim run" in err
        and f"already finished: its last checkpoint is at version {version} (--steps 6)" in err
    )
    assert main(["train", "--mode", "sim", "--resume", str(out), "--steps", str(version)]) == 2
    assert main(["train", "--mode", "sim", "--resume", str(out), "--steps", "12"]) == 0


def test_a_damaged_latest_checkpoint_falls_back_to_an_older_one(tmp_path, capsys, caplog):
    out = tmp_path / "run"
    _sim_run(out)
    run = RunDir(out, resume=True)
    *older, damaged = run.checkpoints()
    damaged.write_bytes(b"truncated")
    assert main(["train", "--mode", "sim", "--resume", str(out), "--steps", "12"]) == 0
    assert f"{damaged} cannot be read" in caplog.text and "falling back" in caplog.text
    fallback = int(older[-1].stem.removeprefix("step-"))
    assert f"resumed the simulation at step {fallback} from {older[-1]}" in caplog.text
    assert json.loads((out / "summary.json").read_text())["steps"] >= 12
    assert not damaged.exists() or damaged.read_bytes() != b"truncated"  # replaced or pruned


def test_every_checkpoint_damaged_is_refused_naming_them(tmp_path, capsys):
    out = tmp_path / "run"
    _sim_run(out)
    run = RunDir(out, resume=True)
    for path in run.checkpoints():
        path.write_bytes(b"truncated")
    assert main(["train", "--mode", "sim", "--resume", str(out), "--steps", "12"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint can be read" in err
    assert all(f"{p.name} cannot be read" in err for p in run.checkpoints())


def test_a_folder_in_use_is_refused_naming_the_holder(tmp_path, capsys, lock_holder):
    out = tmp_path / "run"
    _sim_run(out)
    before = {name: (out / name).read_bytes() for name in ("config.json", "summary.json")}
    holder = lock_holder(out)  # another process holds the folder (tests/conftest.py)
    capsys.readouterr()
    for argv in (
        ["train", "--mode", "sim", "--resume", str(out), "--steps", "12"],
        ["train", "--mode", "sim", *SIM, "--steps", "4", "--overwrite", "--out", str(out)],
    ):
        assert main(argv) == 2
        assert f"is in use by process {holder.pid}" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in before} == before  # untouched
    holder.kill()
    holder.join()
    # the holder died without releasing: the next writer takes the folder over
    assert main(["train", "--mode", "sim", "--resume", str(out), "--steps", "12"]) == 0


@pytest.mark.multiprocess
def test_sync_finished_run_and_damaged_checkpoint(sync_cli_copy, capfd):
    out, _ = sync_cli_copy  # --steps 6 --checkpoint-every 2 (tests/conftest.py, SYNC_CLI_RUN)
    assert main(["train", "--resume", str(out)]) == 2
    assert "--mode sync run in" in capfd.readouterr().err
    assert main(["train", "--resume", str(out), "--steps", "6"]) == 2
    assert "at step 6 with --steps 6" in capfd.readouterr().err
    damaged = RunDir(out, resume=True).latest_checkpoint()
    damaged.write_bytes(b"truncated")
    assert main(["train", "--resume", str(out), "--steps", "12", "--no-progress"]) == 0
    printed = capfd.readouterr()
    assert f"{damaged} cannot be read" in printed.out + printed.err
    assert json.loads((out / "summary.json").read_text())["steps"] == 12
    resumed = [r["step"] for r in RunDir(out, resume=True).read_log() if r["kind"] == "resume"]
    assert resumed == [4]  # the newest intact checkpoint
