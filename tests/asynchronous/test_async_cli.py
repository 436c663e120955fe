"""``sparsgd train --mode sim`` end to end through the command line, and its refusals."""

from __future__ import annotations

import json
import math

import pytest

from sparsgd.cli.main import main

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("one_torch_thread")]

SMALL = ["--model", "logreg", "--dataset", "synthetic", "--batch-size", "16", "--lr", "0.1"]


def test_sim_run_then_resume_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train", "--mode", "sim", *SMALL, "--workers", "3", "--steps", "40",
        "--density", "0.1", "--policy", "dampening", "--damping-beta", "0.2",
        "--slowdown", "1,1,2", "--worker-time", "exponential:0.05", "--network", "10gbe",
        "--sparse-downlink", "--log-every", "5", "--checkpoint-every", "10", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "done: test accuracy" in printed and "staleness: mean" in printed
    config = json.loads((out / "config.json").read_text())
    assert (config["mode"], config["policy"], config["damping_beta"]) == ("sim", "dampening", 0.2)
    assert (config["network"], config["sparse_downlink"], config["slowdown"]) == (
        "10gbe",
        True,
        [1.0, 1.0, 2.0],
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] >= 40 and summary["workers"] == 3
    assert summary["network"]["name"] == "10gbe"

    assert main(["train", "--mode", "sim", "--resume", str(out), "--steps", "60"]) == 0
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["steps"] >= 60 and resumed["updates_applied"] == resumed["steps"]


def test_epochs_become_updates_and_method_dense_sends_everything(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--mode", "sim", *SMALL, "--method", "dense", "--epochs", "0.5",
            "--staleness", "constant:1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["compressor"] == "dense" and config["workers"] == 1
    assert config["steps"] == math.ceil(0.5 * 2048 / 16)  # synthetic: 2048 training samples


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (
            ["--policy", "hogwild"],
            "unknown policy 'hogwild'; valid: vanilla (eta), staleness_aware",
        ),
        (["--staleness", "zipf:2"], "valid: constant:K"),
        (["--worker-time", "pareto:1"], "'pareto' takes 2 parameter(s), written pareto:XM,ALPHA"),
        (["--network", "100gbe"], "network must be one of ['10gbe', '1gbe'] or ALPHA,BETA"),
        (["--server-momentum", "-0.5"], "server_momentum must be in [0, 1)"),
        (["--damping-beta", "nan"], "damping_beta must be finite"),
        (["--ssp-bound", "-1"], "ssp_bound must be >= 0"),
        (["--policy", "ssp"], "policy 'ssp' needs a bound"),
        (["--slowdown", "1,2"], "slowdown needs one factor per worker (4)"),
        (["--weight-decay", "0.1"], "--weight-decay applies to --mode sync only"),
        (["--density", "0"], "density must be in (0, 1]"),
    ],
)
def test_bad_input_exits_2_with_the_reason_and_leaves_no_folder(tmp_path, capsys, extra, needle):
    out = tmp_path / "run"
    assert main(["train", "--mode", "sim", *SMALL, "--steps", "5", "--out", str(out), *extra]) == 2
    assert needle in capsys.readouterr().err
    assert not out.exists()


def test_resume_of_a_folder_without_a_run_is_refused(tmp_path, capsys):
    assert main(["train", "--mode", "sim", "--resume", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--dataset", "ptb", "--model", "lstm"], "need a classification data set; 'ptb'"),
        (["--model", "alexnet"], "model must be one of ["),
        (["--workers", "5000"], "workers must be <= the number of training samples (2048)"),
    ],
)
@pytest.mark.parametrize("mode", ["async", "sim"])
def test_bad_problem_refused_before_processes_or_folder(tmp_path, capsys, mode, extra, needle):
    # exit code 2 is a refusal in this process; a failure inside the server would give 1
    out = tmp_path / "run"
    argv = ["train", "--mode", mode, *SMALL, "--steps", "5", "--out", str(out), *extra]
    assert main(argv) == 2
    assert needle in capsys.readouterr().err
    assert not out.exists()  # so the corrected command can use the same --out
