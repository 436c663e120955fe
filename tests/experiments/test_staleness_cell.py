"""One cell of the staleness study: held-out split, scores, staleness, divergence, its spec."""

from __future__ import annotations

import json

import pytest
import torch

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.experiments.async_setup import LoadedProblem
from sparsgd.experiments.datasets import load_bundle
from sparsgd.experiments.staleness_cell import cell_spec, run_cell, split_valid
from sparsgd.runs import RunDir
from sparsgd.sim.sim_run import run_simulation

VALID = 300
POISSON_MEAN_TOL = 0.5  # mean of 200 Poisson(4) draws: std 2 / sqrt(200) = 0.14; early clips


def _spec(**changes) -> dict:
    args = dict(
        model="logreg",
        dataset="digits",
        valid_size=VALID,
        method="topk-0.01",
        lr=0.2,
        mean_staleness=4,
        steps=24,
        batch_size=16,
        eval_every=12,
        seed=3,
    )
    return cell_spec(**{**args, **changes})


def test_split_valid_holds_out_the_last_samples():
    bundle = load_bundle("digits", None)
    split = split_valid(bundle, VALID)
    x, y = bundle.train.tensors
    assert split.num_train == bundle.num_train - VALID
    assert torch.equal(torch.cat([split.train.tensors[0], split.valid.tensors[0]]), x)
    assert torch.equal(torch.cat([split.train.tensors[1], split.valid.tensors[1]]), y)
    assert torch.equal(split.test.tensors[0], bundle.test.tensors[0])
    with pytest.raises(ValueError, match=r"valid_size must be in \[1, \d+\].*got 0"):
        split_valid(bundle, 0)


def test_the_curve_is_the_simulators_own_run_on_the_split_data(tmp_path):
    spec = _spec()
    result = run_cell(spec)
    # reference: `sparsgd train --mode sim`'s code path, on the same split, into a folder
    bundle = split_valid(load_bundle("digits", None), VALID)
    problem = LoadedProblem("logreg", "digits", bundle=bundle, seed=3)
    cfg = AsyncConfig(
        mode="sim",
        workers=1,
        staleness="poisson:4",
        steps=24,
        lr=0.2,
        batch_size=16,
        seed=3,
        compressor="topk",
        density=0.01,
        memory="residual",
        eval_every=12,
    )
    run_simulation(cfg, problem, tmp_path / "run")
    run = RunDir(tmp_path / "run", resume=True)
    evals = {r["step"]: r["test_accuracy"] for r in run.read_log() if r["kind"] == "eval"}
    run.close()
    assert result["curve"]["updates"] == [12, 24]
    assert result["curve"]["test"] == [evals[12], evals[24]]
    # the score is the evaluation at update `steps`, before the flush (evaluated after it)
    assert result["test_accuracy"] == evals[24]
    assert max(evals) > 24
    assert result["valid_accuracy"] == result["curve"]["valid"][-1]
    assert result["epochs"] == pytest.approx(24 * 16 / bundle.num_train)
    assert not result["diverged"] and result["chance"] == pytest.approx(0.1)


def test_a_cell_is_deterministic_and_json_able():
    spec = _spec(method="dc-asgd")
    a, b = run_cell(spec), run_cell(spec)
    a.pop("cpu_seconds"), b.pop("cpu_seconds")
    assert a == b
    assert json.loads(json.dumps(a)) == a


def test_drawn_staleness_has_the_requested_mean():
    sync = run_cell(_spec(mean_staleness=0, steps=200, eval_every=200))
    assert (sync["tau_mean"], sync["tau_max"]) == (0.0, 0)
    stale = run_cell(_spec(mean_staleness=4, steps=200, eval_every=200))
    assert stale["tau_mean"] == pytest.approx(4.0, abs=POISSON_MEAN_TOL)


@pytest.mark.parametrize(
    ("method", "lr", "why"),
    [
        ("vanilla", 1e6, "the server stopped at update"),  # refused pushes halt the server
        ("topk-0.01", 1e30, "gradients were not finite"),  # the worker gives up
    ],
)
def test_a_diverged_run_scores_chance_on_both_splits(method, lr, why):
    result = run_cell(_spec(model="fnn3", method=method, lr=lr))
    assert result["diverged"] and why in result["reason"]
    assert result["valid_accuracy"] == result["test_accuracy"] == result["chance"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"method": "nope"}, "method must be one of"),
        ({"steps": 25}, "steps must be a multiple of eval_every"),
        ({"mean_staleness": -1}, "mean_staleness must be an integer >= 0; got -1"),
        ({"valid_size": 0}, "valid_size must be an integer >= 1; got 0"),
    ],
)
def test_bad_specs_are_refused_naming_the_parameter(changes, message):
    with pytest.raises(ValueError, match=message):
        _spec(**changes)
