"""Paired verdicts: the interval is Student's t over seeds, and the rule decides the word."""

from __future__ import annotations

import math

import pytest

from sparsgd.report.stats import combine, judge, paired_diff

T_975_DF2 = 4.302652729911275  # Student's t quantile, 97.5 %, 2 degrees of freedom (tables)


def test_interval_by_hand() -> None:
    diff = paired_diff([0.90, 0.92, 0.95], [0.91, 0.90, 0.92])
    d = [-0.01, 0.02, 0.03]
    mean = sum(d) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in d) / 2)
    half = T_975_DF2 * std / math.sqrt(3)
    assert diff is not None and diff.n == 3
    assert diff.mean == pytest.approx(mean)
    assert (diff.low, diff.high) == pytest.approx((mean - half, mean + half))


def test_pairs_with_a_missing_value_are_dropped() -> None:
    diff = paired_diff([0.9, None, 0.8, float("nan")], [0.8, 0.8, 0.7, 0.7])
    assert diff is not None and diff.n == 2 and diff.mean == pytest.approx(0.1)


def test_not_worse_rule() -> None:
    same = judge([0.95, 0.96, 0.97], [0.95, 0.96, 0.97], margin=0.01)
    assert same.word == "agrees" and "-0.01" in same.text
    worse = judge([0.80, 0.81, 0.79], [0.95, 0.96, 0.97], margin=0.01)
    assert worse.word == "disagrees"
    noisy = judge([0.5, 0.99, 0.7], [0.95, 0.5, 0.9], margin=0.01)
    assert noisy.word == "inconclusive"


def test_better_rule() -> None:
    assert judge([0.9, 0.91, 0.92], [0.8, 0.80, 0.83], rule="better").word == "agrees"
    assert judge([0.8, 0.80, 0.83], [0.9, 0.91, 0.92], rule="better").word == "disagrees"


def test_runs_at_chance_are_inconclusive() -> None:
    verdict = judge([0.10, 0.11, 0.09], [0.11, 0.10, 0.12], margin=0.01, chance_level=0.2)
    assert verdict.word == "inconclusive" and "chance" in verdict.text


def test_one_seed_gives_no_interval() -> None:
    verdict = judge([0.9], [0.8], rule="better")
    assert verdict.word == "inconclusive" and verdict.diff is None


@pytest.mark.parametrize(
    "kwargs, match",
    [({"rule": "best"}, "rule"), ({"margin": -1.0}, "margin"), ({"margin": math.inf}, "margin")],
)
def test_bad_arguments_are_refused(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        judge([0.9, 0.8], [0.8, 0.7], **kwargs)


def test_unpaired_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="paired"):
        paired_diff([0.9, 0.8], [0.8])


def test_combine() -> None:
    a = judge([0.9, 0.91, 0.92], [0.8, 0.80, 0.83], rule="better")
    d = judge([0.8, 0.80, 0.83], [0.9, 0.91, 0.92], rule="better")
    i = judge([0.9], [0.8])
    assert combine([a, a]) == "agrees"
    assert combine([d, i]) == "disagrees"
    assert combine([a, i]) == "partly agrees"
    assert combine([a, d]) == "partly agrees"
    assert combine([i, i]) == "inconclusive"
