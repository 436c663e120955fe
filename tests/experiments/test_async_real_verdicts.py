"""async-real against hand-computed cases: the paired claim, the staleness check, calibration."""

from __future__ import annotations

import pytest

from sparsgd.experiments.async_real_cell import compute_time, real_spec, sim_specs
from sparsgd.experiments.async_real_report import judge_sources, tau_check

CHANCE = 0.1  # MNIST: 10 classes
VANILLA = [0.95, 0.96, 0.97]  # seeds 0, 1, 2


def _runs(sparse_real: list[float], vanilla_real: list[float] = VANILLA) -> dict:
    def arm(scores):
        return [{"score": s, "chance": CHANCE} for s in scores]

    sims = {"sim-workers": [], "sim-drawn": []}  # not run: no verdict for them
    return {
        "vanilla": {"real": arm(vanilla_real), **sims},
        "topk-0.01": {"real": arm(sparse_real), **sims},
    }


def test_a_sparse_method_that_loses_nothing_is_not_worse():
    verdicts = judge_sources(_runs([0.955, 0.965, 0.975]))  # +0.005 every seed: CI [+0.005]
    assert set(verdicts) == {("topk-0.01", "real")}  # the sources without runs are skipped
    verdict = verdicts[("topk-0.01", "real")]
    assert verdict.word == "agrees"
    assert verdict.diff.mean == pytest.approx(0.005, abs=1e-12)
    assert "low end >= -0.01" in verdict.text


def test_losing_five_points_every_seed_is_worse():
    verdict = judge_sources(_runs([0.90, 0.91, 0.92]))[("topk-0.01", "real")]
    assert verdict.word == "disagrees"  # CI [-0.05, -0.05], high end < -0.01


def test_a_wide_interval_is_inconclusive():
    # differences 0, -0.02, +0.02: mean 0, std 0.02, half-width 4.302653 * 0.02 / sqrt 3
    verdict = judge_sources(_runs([0.95, 0.94, 0.99]))[("topk-0.01", "real")]
    assert verdict.word == "inconclusive"
    assert verdict.diff.low == pytest.approx(-0.049683, abs=1e-6)


def test_runs_all_at_chance_are_inconclusive():
    verdict = judge_sources(_runs([0.12, 0.11, 0.10], [0.10, 0.13, 0.11]))
    assert verdict[("topk-0.01", "real")].word == "inconclusive"  # all <= 2 x chance = 0.2


@pytest.mark.parametrize(
    ("pairs", "word"),
    [
        ([(2.72, 3.0), (2.77, 3.0)], "agrees"),  # 0.28 <= 0.25 x 2.72 = 0.68
        ([(2.0, 3.0)], "disagrees"),  # 1.0 > 0.25 x 2.0 = 0.5
        ([(2.72, 3.0), (2.0, 3.0)], "partly agrees"),
        ([(None, 3.0)], "disagrees"),  # every real run diverged: nothing to predict
    ],
)
def test_the_staleness_check(pairs, word):
    assert tau_check(pairs) == word


def test_the_simulated_cells_take_their_numbers_from_the_real_cell():
    real = real_spec(
        method="topk-0.01",
        seed=2,
        model="lenet5",
        dataset="mnist",
        slowdown=(1.0, 1.0, 2.0, 4.0),
        steps=1500,
        lr=0.125,
        batch_size=32,
        test_limit=2000,
        evals=15,
        timeout_s=1800.0,
    )
    result = {"summary": {"wall_seconds": 30.0, "steps": 1500, "staleness": {"mean": 2.75}}}
    # T = (t / n) sum_w 1 / s_w = (30 / 1500) (1 + 1 + 1/2 + 1/4) = 0.02 x 2.75
    assert compute_time(real["slowdown"], result) == pytest.approx(0.055, abs=1e-12)
    sims = sim_specs(real, result)
    assert sims["sim-workers"]["worker_time"] == "constant:0.055"
    assert sims["sim-drawn"]["staleness"] == "poisson:2.75"
    assert all(s["seed"] == 2 and s["method"] == "topk-0.01" for s in sims.values())
    assert real["eval_every"] == 100 and real["memory"] == "residual"
    assert sim_specs(real, {"summary": None}) == {}  # nothing to calibrate from
