"""A dense push (the (d,) vector itself) is the same update as the message of every entry,
and every per-push check refuses what it refused as a message: NaN, Inf, too large, a bad
shape; the one-read checks (aminmax, a finite sum) decide as the element-wise tests do."""

from __future__ import annotations

import pytest
import torch

from sparsgd.asynchronous.policies import PolicySettings, make_policy
from sparsgd.asynchronous.server_state import RejectedPush, ServerState
from sparsgd.compress.message import SparseMessage

D = 16
LR = 0.1


def _state(policy: str = "vanilla", **kwargs) -> ServerState:
    settings = PolicySettings(lr=LR, dc_lambda=0.2, dc_adaptive=True)
    return ServerState(torch.linspace(-1, 1, D), make_policy(policy, settings), **kwargs)


def _every(values: torch.Tensor) -> SparseMessage:
    return SparseMessage(torch.arange(values.numel(), dtype=torch.int32), values, values.numel())


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"momentum": 0.5, "track_changes": True}, {"policy": "dc_asgd"}],
    ids=["vanilla", "momentum-changes", "dc_asgd"],
)
def test_a_dense_push_is_the_update_of_the_message_of_every_entry(kwargs):
    gen = torch.Generator().manual_seed(5)
    a, b = _state(**kwargs), _state(**kwargs)
    for _ in range(4):
        c = torch.randn(D, generator=gen)
        for state, push in ((a, c.clone()), (b, _every(c.clone()))):
            v, _ = state.pull(0)
            app = state.push(push, v, worker=0)
            assert app.nnz == D
    assert torch.equal(a.x, b.x) and a.version == b.version == 4
    if a.last_changed is not None:
        assert torch.equal(a.last_changed, b.last_changed)


@pytest.mark.parametrize(
    ("push", "reason"),
    [
        (torch.zeros(D + 1), "malformed"),  # wrong length
        (torch.zeros(2, D // 2), "malformed"),  # not flat
        (torch.zeros(D, dtype=torch.int32), "malformed"),  # not float
        (torch.tensor([0.0] * (D - 1) + [float("nan")]), "non_finite"),
        (torch.tensor([float("-inf")] + [0.0] * (D - 1)), "non_finite"),
        (torch.tensor([1.0] * (D - 1) + [-2e7]), "too_large"),
    ],
)
def test_a_bad_dense_push_is_refused_counted_and_never_applied(push, reason):
    state = _state(max_push=1e6)
    before = state.x.clone()
    with pytest.raises(RejectedPush) as err:
        state.push(push, 0)
    assert err.value.reason == reason and state.rejected[reason] == 1
    assert torch.equal(state.x, before) and state.version == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("position", [0, 5, D - 1])
def test_non_finite_values_anywhere_in_a_message_are_refused(bad, position):
    values = torch.randn(D, generator=torch.Generator().manual_seed(position))
    values[position] = bad
    state = _state()
    with pytest.raises(RejectedPush, match="non_finite"):
        state.push(_every(values), 0)


def test_largest_magnitude_is_read_from_either_end():
    """max |c_i| of aminmax is max(-min, max): a large negative entry counts as its size."""
    state = _state(max_push=3.0)
    with pytest.raises(RejectedPush, match=r"magnitude 4 > max_push 3"):
        state.push(
            SparseMessage(torch.tensor([2, 7], dtype=torch.int32), torch.tensor([-4.0, 1.0]), D), 0
        )
    state.push(SparseMessage(torch.tensor([2], dtype=torch.int32), torch.tensor([-3.0]), D), 0)
    assert state.version == 1


def test_a_push_whose_norm_exceeds_max_push_but_no_entry_does_is_applied():
    """The dot-product bound (sqrt(2.5^2 + 2.5^2) > 3) only sends the push to aminmax."""
    state = _state(max_push=3.0)
    state.push(_every(torch.full((D,), 2.5)), 0)
    assert state.version == 1 and state.rejected["too_large"] == 0


def test_a_step_whose_sum_overflows_but_whose_entries_are_finite_is_applied():
    """The finite-sum shortcut falls back to the element-wise test: huge finite x is kept."""
    state = ServerState(torch.full((D,), 3e38), make_policy("vanilla", PolicySettings(lr=LR)))
    state.push(SparseMessage(torch.tensor([0], dtype=torch.int32), torch.tensor([1.0]), D), 0)
    assert state.version == 1 and bool(torch.isfinite(state.x).all())
