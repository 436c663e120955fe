"""The gtopk-delta verdict against intervals computed by hand (t table, 2 degrees of freedom)."""

from __future__ import annotations

import math

import pytest

from sparsgd.experiments.delta_verdicts import judge_below_one

T_975_2 = 4.302653  # Student t, 0.975 quantile, 2 degrees of freedom (printed tables)
TOL = 1e-6  # the table value's rounding
TRAINED = [0.95, 0.96, 0.97]  # final test accuracies well above the chance level
CHANCE_LEVEL = 0.2


def _interval(values: list[float]) -> tuple[float, float, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = T_975_2 * std / math.sqrt(n)
    return mean, mean - half, mean + half


def test_delta_confidently_below_one_agrees():
    means = [0.99, 0.992, 0.994]  # mean 0.992, std 0.002: half-width 4.302653 * 0.002 / sqrt 3
    verdict = judge_below_one(means, TRAINED, CHANCE_LEVEL)
    mean, low, high = _interval(means)
    assert high == pytest.approx(0.996968, abs=TOL)
    assert verdict.word == "agrees"
    assert verdict.diff.mean + 1 == pytest.approx(mean, abs=TOL)
    assert verdict.diff.low + 1 == pytest.approx(low, abs=TOL)
    assert verdict.diff.high + 1 == pytest.approx(high, abs=TOL)
    assert "mean delta 0.9920 [0.9870, 0.9970] (95% t, n=3)" in verdict.text
    assert "agrees if the high end < 1" in verdict.text  # the rule rides with the numbers


def test_an_interval_across_one_is_inconclusive():
    verdict = judge_below_one([0.998, 1.0, 1.002], TRAINED, CHANCE_LEVEL)  # [0.9950, 1.0050]
    assert verdict.word == "inconclusive"
    assert "[0.9950, 1.0050]" in verdict.text


def test_delta_confidently_at_or_above_one_disagrees():
    verdict = judge_below_one([1.05, 1.06, 1.07], TRAINED, CHANCE_LEVEL)  # [1.0352, 1.0848]
    assert verdict.word == "disagrees"
    assert "[1.0352, 1.0848]" in verdict.text


def test_a_seed_at_chance_makes_the_run_inconclusive():
    accuracies = [0.97, 0.1135, 0.96]  # seed 1 did not train: its delta is not about training
    verdict = judge_below_one([0.99, 0.992, 0.994], accuracies, CHANCE_LEVEL)
    assert verdict.word == "inconclusive"
    assert "1 of 3 seeds at or below the chance level 0.2" in verdict.text
    assert "0.114" in verdict.text


def test_a_diverged_seed_counts_as_at_chance():
    verdict = judge_below_one([0.99, None, 0.994], [0.97, None, 0.96], CHANCE_LEVEL)
    assert verdict.word == "inconclusive" and "diverged" in verdict.text


def test_one_seed_gives_no_interval():
    verdict = judge_below_one([0.9], [0.97], CHANCE_LEVEL)
    assert verdict.word == "inconclusive" and verdict.diff is None


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="one value per seed; got 2 and 3"):
        judge_below_one([0.99, 0.98], TRAINED, CHANCE_LEVEL)
