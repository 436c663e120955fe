"""SSP, the policies' bound: a worker more than S pushes ahead of the slowest live worker waits."""

from __future__ import annotations

import pytest
import torch

from sparsgd.asynchronous.policies import PolicySettings, make_policy
from sparsgd.asynchronous.server_state import ServerState
from sparsgd.compress.message import SparseMessage

D = 4


def _state(workers: int, bound: int | None, policy: str = "ssp") -> ServerState:
    settings = PolicySettings(lr=0.1, ssp_bound=bound)
    return ServerState(torch.zeros(D), make_policy(policy, settings), workers=workers)


def _pull_and_push(state: ServerState, worker: int) -> None:
    version, _ = state.pull(worker)
    state.push(
        SparseMessage(torch.tensor([0], dtype=torch.int32), torch.ones(1), D), version, worker
    )


def test_worker_waits_while_more_than_s_ahead_and_goes_when_the_slowest_catches_up():
    state = _state(3, bound=1)
    for _ in range(2):
        _pull_and_push(state, 0)
    assert state.gap(0) == 2 and not state.may_pull(0)
    _pull_and_push(state, 1)
    assert not state.may_pull(0)  # worker 2 is still at 0
    _pull_and_push(state, 2)
    assert state.may_pull(0) and state.gap(0) == 1
    state.pull(0)
    assert state.max_gap == 1


def test_a_dead_worker_no_longer_holds_the_others_back():
    state = _state(2, bound=0)
    _pull_and_push(state, 0)
    assert not state.may_pull(0)
    state.retire(1)
    assert state.may_pull(0)


def test_granting_beyond_the_bound_is_an_error():
    state = _state(2, bound=0)
    _pull_and_push(state, 0)
    with pytest.raises(RuntimeError, match="SSP bound is 0"):
        state.pull(0)


def test_no_bound_grants_everything_and_tracks_the_gap():
    state = _state(2, bound=None, policy="vanilla")
    for _ in range(5):
        _pull_and_push(state, 0)
    state.pull(0)
    assert state.max_gap == 5


def test_the_bound_adds_to_any_policy_and_ssp_requires_one():
    assert _state(2, bound=3, policy="dampening").policy.bound == 3
    with pytest.raises(ValueError, match="policy 'ssp' needs a bound"):
        _state(2, bound=None)


def test_bad_bound_and_unknown_worker_are_refused():
    with pytest.raises(ValueError, match="ssp_bound must be >= 0"):
        _state(2, bound=-1)
    with pytest.raises(ValueError, match=r"worker must be in \[0, 2\); got 5"):
        _state(2, bound=1).retire(5)
    with pytest.raises(ValueError, match=r"worker must be in \[0, 2\); got 5"):
        _pull_and_push(_state(2, bound=1), 5)


def test_clocks_round_trip_through_the_server_state():
    state = _state(3, bound=2)
    _pull_and_push(state, 1)
    state.pull(1)
    other = _state(3, bound=2)
    other.load_state_dict(state.state_dict())
    assert other.clocks == state.clocks == [0, 1, 0] and other.max_gap == state.max_gap == 1
