"""Bad input to the asynchronous trainers fails early, naming the parameter, value and reason."""

from __future__ import annotations

import math

import pytest
import torch

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.speed import (
    TIME_DISTRIBUTIONS,
    Pace,
    make_time_distribution,
    parse_slowdown,
)

DRAWS = 20_000
# sample means of DRAWS draws: 5 standard errors leave a false alarm about once in 3.5 million
SIGMAS = 5.0


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"policy": "hogwild"}, "unknown policy 'hogwild'; valid: vanilla"),
        ({"policy": "ssp"}, "policy 'ssp' needs a bound: --ssp-bound S"),
        ({"lr": -1.0}, "lr must be > 0"),
        ({"lr": float("inf")}, "lr must be finite"),
        ({"server_momentum": 1.0}, r"server_momentum must be in \[0, 1\)"),
        ({"server_momentum": float("nan")}, r"server_momentum must be in \[0, 1\)"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"steps": -5}, "steps must be an integer >= 1"),
        ({"density": 1.5}, r"density must be in \(0, 1\]; got 1.5"),
        ({"compressor": "zip"}, "unknown compressor 'zip'"),
        ({"memory": "lots"}, "unknown memory 'lots'"),
        ({"mode": "turbo"}, "mode must be one of"),
        ({"workers": 3, "slowdown": (1.0, 2.0)}, "one factor per worker"),
        ({"workers": 2, "slowdown": (1.0, 0.5)}, "must be finite and >= 1"),
        ({"delay": "gamma:1"}, "unknown worker-time distribution 'gamma'"),
        ({"worker_time": "exponential:-1"}, "MEAN must be >= 0"),
        ({"mode": "async", "staleness": "constant:2"}, "--staleness draws tau in the simulator"),
        ({"timeout_s": 0.0}, "timeout_s must be a finite number > 0"),
        ({"checkpoint_every": -1}, "checkpoint_every must be an integer >= 0"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(kwargs, needle):
    with pytest.raises((ValueError, TypeError), match=needle):
        AsyncConfig(**kwargs)


def test_unknown_time_distribution_lists_the_valid_ones_with_their_syntax():
    with pytest.raises(ValueError) as info:
        make_time_distribution("weibull:1,2")
    for kind in TIME_DISTRIBUTIONS.values():
        assert kind.syntax in str(info.value)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("exponential", "takes 1 parameter"),
        ("exponential:1,2", "takes 1 parameter"),
        ("exponential:abc", "MEAN must be a number; got 'abc'"),
        ("exponential:nan", "MEAN must be finite"),
        ("constant:inf", "T must be finite"),
        ("pareto:1,-2", "ALPHA must be >= 0"),
        ("pareto:1,0", "ALPHA must be > 0"),
        ("shifted-exponential:-1,1", "S must be >= 0"),
        ("", "must be a string NAME"),
    ],
)
def test_bad_distribution_parameters_are_refused(spec, needle):
    with pytest.raises(ValueError, match=needle):
        make_time_distribution(spec)


@pytest.mark.parametrize(
    ("spec", "mean", "var"),
    [
        ("constant:0.25", 0.25, 0.0),
        ("exponential:0.5", 0.5, 0.25),
        ("shifted-exponential:1,0.5", 1.5, 0.25),
        ("pareto:1,5", 5 / 4, 5 / (16 * 3)),  # xm^2 a / ((a-1)^2 (a-2))
    ],
)
def test_time_distributions_have_their_mean(spec, mean, var):
    dist = make_time_distribution(spec)
    gen = torch.Generator().manual_seed(0)
    draws = [dist.sample(gen) for _ in range(DRAWS)]
    assert min(draws) >= {"pareto": 1.0, "shifted-exponential": 1.0}.get(spec.split(":")[0], 0.0)
    assert abs(sum(draws) / DRAWS - mean) <= SIGMAS * math.sqrt(var / DRAWS) + 1e-12


def test_slowdown_parsing():
    assert parse_slowdown("1,1,2,4", 4) == (1.0, 1.0, 2.0, 4.0)
    assert parse_slowdown(None, 3) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="must be numbers; got 'x'"):
        parse_slowdown("1,x", 2)
    with pytest.raises(ValueError, match=r"finite and >= 1 .*; got nan in '1,nan'"):
        parse_slowdown(("1", "nan"), 2)  # what the command line passes


def test_pace_stretches_compute_time_by_the_slowdown():
    pace = Pace(4.0, make_time_distribution("constant:0.5"), torch.Generator())
    assert pace.extra_seconds(0.1) == pytest.approx(3 * 0.1 + 0.5)
    with pytest.raises(ValueError, match="slowdown must be finite and >= 1"):
        Pace(0.5, None, torch.Generator())
