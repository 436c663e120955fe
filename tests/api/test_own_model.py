"""``sparsgd.train`` with a user's model factory and Datasets, and examples/own_model.py.

The equivalence test is the strong one: the built-in logreg on the synthetic data, handed over
as a factory and two Datasets, must simulate exactly as the built-in Problem does (same seed,
same parameters, same shards), so the user's path adds nothing and drops nothing.
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import sparsgd
from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.data import load_dataset
from sparsgd.models import ModelSpec, build_model
from sparsgd.sim.sim_run import run_simulation
from sparsgd.worker.problem import Problem
from sparsgd.worker.user_problem import UserProblem

pytestmark = pytest.mark.timeout(240)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model.py"
SYNTHETIC = load_dataset("synthetic", None, num_train=256, seed=0)
PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 256),))
SIM = AsyncConfig(mode="sim", workers=3, lr=0.1, batch_size=16, steps=30, density=0.1)


def synthetic_logreg() -> nn.Module:
    """The built-in logreg for the synthetic data, as a user's module-level factory."""
    return build_model("logreg", ModelSpec.of(SYNTHETIC))


def test_user_problem_simulates_exactly_as_the_built_in_problem(tmp_path):
    torch.set_num_threads(1)
    builtin = run_simulation(SIM, PROBLEM, tmp_path / "builtin")
    own = sparsgd.train(
        SIM,
        model=synthetic_logreg,
        train_set=SYNTHETIC.train,
        test_set=SYNTHETIC.test,
        out=tmp_path / "own",
    )
    for key in ("final_test_accuracy", "final_test_loss", "bytes_sent_per_rank", "steps"):
        assert own[key] == builtin[key], key
    assert own["staleness"] == builtin["staleness"]


def test_every_call_builds_the_same_model():
    problem = UserProblem.of(synthetic_logreg, SYNTHETIC.train, SYNTHETIC.test, seed=5)
    a, b = problem.module(), problem.module()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    other = UserProblem.of(synthetic_logreg, SYNTHETIC.train, SYNTHETIC.test, seed=6).module()
    assert not torch.equal(next(other.parameters()), next(a.parameters()))


def test_a_lambda_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match=r"model must be picklable.*module level"):
        sparsgd.train(
            SIM,
            model=lambda: nn.Linear(20, 4),
            train_set=SYNTHETIC.train,
            test_set=SYNTHETIC.test,
            out=tmp_path / "r",
        )
    assert not (tmp_path / "r").exists()  # refused before a folder is made


def test_items_that_are_not_labelled_pairs_are_refused():
    bad = [torch.zeros(3)] * 4
    with pytest.raises(ValueError, match=r"train_set\[0\] must be an \(x, y\) pair"):
        UserProblem.of(synthetic_logreg, bad, SYNTHETIC.test)
    floats = [(torch.zeros(20), 0.5)] * 4
    with pytest.raises(ValueError, match=r"label must be an integer class"):
        UserProblem.of(synthetic_logreg, floats, SYNTHETIC.test)


def _example(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--out", str(out), "--steps", "40", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "test accuracy" in done.stderr
    return json.loads((out / "summary.json").read_text())


@pytest.mark.multiprocess
def test_example_sync(tmp_path):
    summary = _example(tmp_path, "--workers", "2")
    assert summary["model"] == "__main__.DigitNet" and summary["dataset"] == "user"
    assert summary["workers"] == 2 and summary["steps"] == 40
    assert summary["final_test_accuracy"] > 0.3  # 10 classes: chance is 0.1
    assert 0 < summary["traffic_ratio_to_dense"] < 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["problem"]["num_train"] == 1437 and config["problem"]["num_test"] == 360


@pytest.mark.slow
def test_example_sim(tmp_path, monkeypatch, caplog):
    # the example's own main() in this process (the simulation is one process); the example
    # as a script, starting processes of its own, is test_example_sync
    out = tmp_path / "run"
    argv = [str(EXAMPLE), "--out", str(out), "--steps", "40", "--mode", "sim", "--workers", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    caplog.set_level(logging.INFO)
    runpy.run_path(str(EXAMPLE), run_name="__main__")  # its classes live in __main__, as run
    assert "test accuracy" in caplog.text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "sim" and summary["steps"] >= 40
    assert summary["final_test_accuracy"] > 0.3
