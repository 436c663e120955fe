"""Summaries over seeds and along curves."""

from __future__ import annotations

import math

import pytest

from sparsgd.experiments.spread import first_reaching, mean_curve, mean_std, spread_text


def test_mean_and_sample_std():
    mean, std = mean_std([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert std == pytest.approx(1.0)  # sample std: sqrt(((1)^2 + 0 + 1^2) / 2)


def test_non_finite_and_missing_values_are_left_out():
    assert mean_std([1.0, None, math.nan, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_std([None]) == (None, None)
    assert spread_text([None, math.nan]) == "n/a"


def test_spread_text_shows_n_only_with_several_values():
    assert spread_text([0.5]) == "0.500"
    assert spread_text([0.5, 0.7]) == "0.600 ± 0.141 (n=2)"


def test_mean_curve_keeps_the_shared_x_values():
    xs, ys, std = mean_curve([([1, 2, 3], [1.0, 2.0, 3.0]), ([2, 3, 4], [4.0, 6.0, 8.0])])
    assert xs == [2, 3]
    assert ys == [3.0, 4.5]
    assert std == [pytest.approx(math.sqrt(2)), pytest.approx(math.sqrt(4.5))]


def test_first_reaching():
    curve = ([10, 20, 30], [0.5, 0.9, 0.8])
    assert first_reaching(curve, 0.85) == 20
    assert first_reaching(curve, 0.95) is None
