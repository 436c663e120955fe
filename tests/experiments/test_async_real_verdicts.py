"""async-real's verdicts against hand-computed cases: the paired claim and the staleness check."""

from __future__ import annotations

import pytest

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
