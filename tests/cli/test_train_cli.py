"""``sparsgd train``: refusals before any process starts, a real run, resume, a crashed worker.

The real run is the suite's end-to-end run of the command (tests/conftest.py, sync_cli_run).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sparsgd.cli.main import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "alexnet"], "model must be one of ['fnn3', 'lenet5', 'logreg', 'lstm',"),
        (["--dataset", "svhn"], "dataset must be one of ["),
        (
            ["--method", "allreduce"],
            "method must be one of ['dense', 'gtopk', 'gtopk_exact', 'topk']",
        ),
        (["--density", "1.5"], "density must be in (0.0, 1.0]; got 1.5"),
        (["--density", "0"], "density must be in (0.0, 1.0]; got 0.0"),
        (["--workers", "5000"], "workers must be <= the number of training samples (1437)"),
        (["--compressor", "randomk"], "compressor picks topk's local selection"),
    ],
)
def test_impossible_runs_refused_before_any_process(tmp_path, capsys, args, message):
    code = main(["train", "--out", str(tmp_path / "run"), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before the folder was even created


def test_used_out_folder_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.jsonl").write_text("{}\n")
    assert main(["train", "--out", str(out)]) == 2
    assert "is not empty; pass --resume" in capsys.readouterr().err
    assert (out / "log.jsonl").read_text() == "{}\n"


def test_resume_of_a_folder_without_run_refused(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "holds no config.json" in capsys.readouterr().err


def test_tensorboard_without_package_refused(tmp_path, capsys):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert main(["train", "--out", str(tmp_path / "r"), "--tensorboard"]) == 2
        assert "needs the 'tensorboard' package" in capsys.readouterr().err
    else:
        pytest.skip("tensorboard is installed: nothing to refuse")


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--method",
        "--density",
        "--memory",
        "--density-warmup",
        "--workers",
        "--warmup-epochs",
        "--lr-decay-epochs",
        "--clip",
        "--resume",
        "--mode",
        "torchrun",
        "MASTER_ADDR",
    ):
        assert option in text


@pytest.mark.multiprocess
def test_run_resume_and_crash(sync_cli_copy, capsys):
    out, stdout = sync_cli_copy  # `python -m sparsgd.cli.main train` in a fresh process
    assert "test accuracy" in stdout and "dense S-SGD would have sent" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["workers"] == 2
    assert {p.name for p in out.iterdir()} >= {
        "config.json",
        "log.jsonl",
        "summary.json",
        "checkpoints",
    }

    # a resumed run may go further, but not change its trajectory (refused in this process:
    # nothing is started)
    assert main(["train", "--resume", str(out), "--lr", "0.5"]) == 2
    assert "cannot change --lr" in capsys.readouterr().err

    # a worker that fails stops the run with its traceback and a non-zero exit (every
    # checkpoint damaged: a damaged latest one alone falls back to an older one, tests/faults)
    saved = sorted((out / "checkpoints").glob("step-*.pt"))
    latest = saved[-1]
    for path in saved:
        path.write_bytes(b"truncated")
    assert main(["train", "--resume", str(out), "--steps", "8", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "rank 0 of 2 failed" in err
    assert "Traceback" in err and f"{latest.name} cannot be read" in err
    assert json.loads((out / "summary.json").read_text())["steps"] == 6  # untouched
    assert Path(latest).read_bytes() == b"truncated"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: nothing to refuse")
def test_cuda_without_gpu_refused(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--device", "cuda"]) == 2
    assert "device 'cuda' needs a CUDA GPU" in capsys.readouterr().err
