"""The SSP gate: a worker more than S pushes ahead of the slowest live worker waits."""

from __future__ import annotations

import pytest

from sparsgd.asynchronous.ssp import SSPGate


def test_worker_waits_while_more_than_s_ahead_and_goes_when_the_slowest_catches_up():
    gate = SSPGate(range(3), bound=1)
    for _ in range(2):
        gate.grant(0)
        gate.pushed(0)
    assert gate.gap(0) == 2 and not gate.may_pull(0)
    gate.pushed(1)
    assert not gate.may_pull(0)  # worker 2 is still at 0
    gate.pushed(2)
    assert gate.may_pull(0) and gate.gap(0) == 1
    gate.grant(0)
    assert gate.max_gap == 1


def test_a_dead_worker_no_longer_holds_the_others_back():
    gate = SSPGate(range(2), bound=0)
    gate.pushed(0)
    assert not gate.may_pull(0)
    gate.retire(1)
    assert gate.may_pull(0)


def test_granting_beyond_the_bound_is_an_error():
    gate = SSPGate(range(2), bound=0)
    gate.pushed(0)
    with pytest.raises(RuntimeError, match="SSP bound is 0"):
        gate.grant(0)


def test_no_bound_grants_everything_and_tracks_the_gap():
    gate = SSPGate(range(2), bound=None)
    for _ in range(5):
        gate.pushed(0)
    gate.grant(0)
    assert gate.max_gap == 5


def test_bad_bound_and_unknown_worker_are_refused():
    with pytest.raises(ValueError, match="ssp bound must be an integer >= 0"):
        SSPGate(range(2), bound=-1)
    with pytest.raises(ValueError, match="worker must be one of"):
        SSPGate(range(2), bound=1).pushed(5)


def test_state_round_trip():
    gate = SSPGate(range(3), bound=2)
    gate.pushed(1)
    gate.grant(1)
    other = SSPGate(range(3), bound=2)
    other.load_state_dict(gate.state_dict())
    assert other.clocks == gate.clocks and other.max_gap == gate.max_gap
