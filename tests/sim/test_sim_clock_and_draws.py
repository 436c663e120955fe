"""Staleness distributions, the alpha-beta network clock and the event queue."""

from __future__ import annotations

import math

import pytest
import torch

from sparsgd.sim.event_queue import EventQueue
from sparsgd.sim.network_clock import NETWORK_PRESETS, Link, NetworkModel, parse_network
from sparsgd.sim.staleness import STALENESS_DISTRIBUTIONS, TAIL_MASS, make_staleness

DRAWS = 20_000
SIGMAS = 5.0  # sample-mean tolerance in standard errors (false alarm ~ 1 in 3.5 million)


@pytest.mark.parametrize(
    ("spec", "mean", "var"),
    [
        ("constant:3", 3.0, 0.0),
        ("uniform:4", 2.0, (5**2 - 1) / 12),
        ("geometric:2", 2.0, 2.0 * 3.0),  # mean m: variance m (1 + m)
        ("poisson:1.5", 1.5, 1.5),
    ],
)
def test_staleness_draws_have_their_mean_and_respect_the_cap(spec, mean, var):
    dist = make_staleness(spec)
    gen = torch.Generator().manual_seed(0)
    draws = [dist.sample(gen) for _ in range(DRAWS)]
    assert all(isinstance(d, int) and 0 <= d <= dist.cap for d in draws)
    # clipping at the cap moves the mean by at most cap * TAIL_MASS
    tolerance = SIGMAS * math.sqrt(var / DRAWS) + dist.cap * TAIL_MASS + 1e-12
    assert abs(sum(draws) / DRAWS - mean) <= tolerance


def test_caps_bound_the_tail():
    assert make_staleness("constant:5").cap == 5
    assert make_staleness("uniform:7").cap == 7
    geo = make_staleness("geometric:3")
    q = 3 / 4
    assert q ** (geo.cap + 1) <= TAIL_MASS < q**geo.cap
    assert make_staleness("geometric:0").cap == 0 and make_staleness("poisson:0").cap == 0
    poisson = make_staleness("poisson:4")
    tail = 1 - sum(math.exp(-4) * 4**k / math.factorial(k) for k in range(poisson.cap + 1))
    assert tail <= TAIL_MASS


def test_same_generator_state_gives_the_same_draws():
    dist = make_staleness("poisson:2")
    gen1, gen2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    first = [dist.sample(gen1) for _ in range(50)]
    assert first == [dist.sample(gen2) for _ in range(50)]
    assert len(set(first)) > 1  # the draws do vary


def test_unknown_staleness_distribution_lists_the_valid_ones_with_syntax():
    with pytest.raises(ValueError) as info:
        make_staleness("zipf:2")
    for kind in STALENESS_DISTRIBUTIONS.values():
        assert kind.syntax in str(info.value)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("constant:-1", "K must be >= 0"),
        ("constant:1.5", "must be a whole number"),
        ("uniform:nan", "S must be finite"),
        ("geometric:inf", "MEAN must be finite"),
        ("poisson:-2", "MEAN must be >= 0"),
        ("uniform", "takes 1 parameter"),
    ],
)
def test_bad_staleness_parameters_are_refused(spec, needle):
    with pytest.raises(ValueError, match=needle):
        make_staleness(spec)


def test_network_presets_and_custom_model():
    gbe = parse_network("1gbe")
    assert (gbe.alpha, gbe.beta) == (0.436e-3, 9e-9)  # Shi et al.'s 1 GbE fit
    assert gbe.seconds(1_000_000) == pytest.approx(0.436e-3 + 9e-3)
    assert parse_network("10gbe") is NETWORK_PRESETS["10gbe"]
    custom = parse_network("0.001,1e-9")
    assert (custom.alpha, custom.beta) == (0.001, 1e-9)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("100gbe", "network must be one of"),
        ("1,2,3", "network must be one of"),
        ("a,b", "two numbers"),
        ("-1,0", "alpha must be a finite number >= 0"),
        ("0,inf", "beta must be a finite number >= 0"),
    ],
)
def test_bad_network_is_refused(text, needle):
    with pytest.raises(ValueError, match=needle):
        parse_network(text)


def test_link_carries_one_message_at_a_time_in_ready_order():
    link = Link(NetworkModel(alpha=1.0, beta=0.5))
    assert link.send(0.0, 2) == 2.0  # 1 + 2 * 0.5
    assert link.send(0.5, 0) == 3.0  # waits for the first message
    assert link.send(10.0, 4) == 13.0  # idle link: starts when ready
    assert (link.messages, link.bytes) == (3, 6)


def test_event_queue_orders_by_time_then_scheduling_order():
    queue = EventQueue()
    queue.push(2.0, 0, "a")
    queue.push(1.0, 1, "b")
    queue.push(2.0, 2, "c")
    queue.push(1.0, 3, "d")
    state = queue.state_dict()
    assert [queue.pop().worker for _ in range(4)] == [1, 3, 0, 2]
    again = EventQueue()
    again.load_state_dict(state)
    assert [again.pop().kind for _ in range(4)] == ["b", "d", "a", "c"]
    with pytest.raises(ValueError, match="finite number >= 0"):
        queue.push(float("nan"), 0, "x")
