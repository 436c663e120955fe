"""Server-side update policies and the server state: the math of each rule, and refusals."""

from __future__ import annotations

import math

import pytest
import torch

from sparsgd.asynchronous.policies import (
    POLICIES,
    DelayCompensated,
    PolicySettings,
    make_policy,
)
from sparsgd.asynchronous.server_state import REJECT_REASONS, RejectedPush, ServerState
from sparsgd.compress.message import SparseMessage

LR = 0.1
D = 12
# the DC-ASGD reference below evaluates the same float32 formula in another order
DC_ATOL = 1e-7


def dense(values: torch.Tensor) -> SparseMessage:
    return SparseMessage(torch.arange(values.numel(), dtype=torch.int32), values, values.numel())


def sparse(indices: list[int], values: list[float], numel: int = D) -> SparseMessage:
    return SparseMessage(
        torch.tensor(indices, dtype=torch.int32), torch.tensor(values, dtype=torch.float32), numel
    )


@pytest.mark.parametrize(
    ("name", "tau", "expected"),
    [
        ("vanilla", 0, LR),
        ("vanilla", 7, LR),
        ("ssp", 3, LR),
        ("staleness_aware", 0, LR),
        ("staleness_aware", 1, LR),
        ("staleness_aware", 4, LR / 4),
        ("dampening", 0, LR),
        ("dampening", 3, LR * math.exp(-0.5 * 3)),
    ],
)
def test_rate_of_each_policy(name, tau, expected):
    policy = make_policy(name, PolicySettings(lr=LR, damping_beta=0.5, ssp_bound=2))
    assert policy.rate(tau) == pytest.approx(expected, rel=1e-15)


def test_unknown_policy_lists_every_name_with_its_syntax():
    with pytest.raises(ValueError) as info:
        make_policy("hogwild", PolicySettings(lr=LR))
    message = str(info.value)
    assert "'hogwild'" in message
    for name in POLICIES:
        assert name in message
    assert "--damping-beta BETA" in message and "--dc-lambda L" in message
    assert "--ssp-bound S" in message


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"lr": -0.1}, "lr must be > 0"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"lr": float("nan")}, "lr must be finite"),
        ({"lr": 0.1, "damping_beta": -1.0}, "damping_beta must be >= 0"),
        ({"lr": 0.1, "damping_beta": float("inf")}, "damping_beta must be finite"),
        ({"lr": 0.1, "dc_lambda": -0.5}, "dc_lambda must be >= 0"),
        ({"lr": 0.1, "ssp_bound": -1}, "ssp_bound must be >= 0"),
    ],
)
def test_bad_policy_settings_are_refused(settings, needle):
    with pytest.raises((ValueError, TypeError), match=needle):
        PolicySettings(**settings)


def test_negative_staleness_is_refused():
    with pytest.raises(ValueError, match="tau must be an integer >= 0"):
        make_policy("staleness_aware", PolicySettings(lr=LR)).rate(-1)


def test_dc_asgd_fixed_and_adaptive_follow_the_formula():
    gen = torch.Generator().manual_seed(0)
    c, x, x_old = (torch.randn(D, generator=gen) for _ in range(3))
    lam = 0.3
    fixed = DelayCompensated(LR, lam).direction(c, x, x_old)
    torch.testing.assert_close(fixed, c + lam * c * c * (x - x_old), rtol=0, atol=DC_ATOL)
    adaptive = DelayCompensated(LR, lam, adaptive=True)
    ms = torch.zeros(D)
    for _ in range(3):  # the mean square accumulates over pushes
        ms = 0.95 * ms + 0.05 * c * c
        got = adaptive.direction(c, x, x_old)
        want = c + lam / torch.sqrt(ms + 1e-7) * c * c * (x - x_old)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=DC_ATOL)


def test_dc_asgd_keeps_a_sparse_push_sparse():
    c = torch.zeros(D)
    c[[2, 5]] = torch.tensor([1.0, -2.0])
    d = DelayCompensated(LR, 0.5).direction(c, torch.randn(D), torch.randn(D))
    assert set(torch.nonzero(d).flatten().tolist()) <= {2, 5}


def test_staleness_zero_step_is_plain_sgd():
    x0 = torch.randn(D, generator=torch.Generator().manual_seed(1))
    g = torch.randn(D, generator=torch.Generator().manual_seed(2))
    state = ServerState(x0, make_policy("vanilla", PolicySettings(lr=LR)))
    version, _ = state.pull(0)
    applied = state.push(dense(g), version, worker=0)
    assert (applied.tau, applied.version, state.version) == (0, 1, 1)
    assert torch.equal(state.x, x0.add(g, alpha=-LR))  # torch.optim.SGD's own operation


def test_server_momentum_accumulates_eta_tau_times_d():
    x0 = torch.zeros(D)
    state = ServerState(x0, make_policy("vanilla", PolicySettings(lr=LR)), momentum=0.5)
    g1, g2 = torch.ones(D), 2 * torch.ones(D)
    state.push(dense(g1), 0)
    state.push(dense(g2), 1)
    u2 = 0.5 * (LR * g1) + LR * g2
    torch.testing.assert_close(state.x, -(LR * g1) - u2, rtol=0, atol=1e-7)


def test_staleness_is_version_difference_and_histogram_counts_it():
    policy = make_policy("staleness_aware", PolicySettings(lr=LR))
    state = ServerState(torch.zeros(D), policy, workers=2)
    v0a, _ = state.pull(0)
    v0b, _ = state.pull(1)
    state.push(sparse([0], [1.0]), v0a, worker=0)
    applied = state.push(sparse([1], [1.0]), v0b, worker=1)
    assert applied.tau == 1 and applied.rate == LR
    assert state.staleness_summary() == {
        "mean": 0.5,
        "max": 1,
        "count": 2,
        "histogram": {"0": 1, "1": 1},
    }


def _rejects(state: ServerState, msg, version, reason: str, worker=None) -> None:
    before = state.x.clone()
    counts = dict(state.rejected)
    with pytest.raises(RejectedPush) as info:
        state.push(msg, version, worker=worker)
    assert info.value.reason == reason
    assert state.rejected[reason] == counts[reason] + 1
    assert torch.equal(state.x, before) and state.version == 1  # never applied


def test_bad_pushes_are_rejected_counted_and_never_applied():
    state = ServerState(torch.zeros(D), make_policy("vanilla", PolicySettings(lr=LR)), workers=4)
    state.push(sparse([0], [1.0]), 0)
    _rejects(state, sparse([0], [1.0]), 2, "future_version")
    _rejects(state, sparse([0], [1.0]), -1, "malformed")
    _rejects(state, sparse([0], [1.0], numel=D + 1), 0, "malformed")
    _rejects(state, sparse([3, 1], [1.0, 1.0]), 0, "malformed")  # not ascending
    _rejects(state, sparse([1, 1], [1.0, 1.0]), 0, "malformed")  # repeated index
    _rejects(state, sparse([0, D], [1.0, 1.0]), 0, "malformed")  # out of range
    _rejects(state, sparse([2], [float("nan")]), 0, "non_finite")
    _rejects(state, "not a message", 0, "malformed")
    _rejects(state, sparse([2], [1.0]), 0, "version_mismatch", worker=3)  # never pulled
    state.pull(3)
    _rejects(state, sparse([2], [1.0]), 0, "version_mismatch", worker=3)  # pulled 1, not 0
    assert set(state.rejected) == set(REJECT_REASONS)
    assert state.applied == 1


def test_a_finite_push_whose_step_overflows_is_rejected():
    state = ServerState(torch.zeros(D), make_policy("vanilla", PolicySettings(lr=10.0)))
    with pytest.raises(RejectedPush, match="overflows"):
        state.push(sparse([2], [3e38]), 0)  # 10 * 3e38 is beyond float32
    assert state.rejected["non_finite"] == 1 and torch.equal(state.x, torch.zeros(D))


def test_a_refused_push_leaves_the_adaptive_dc_state_untouched():
    settings = PolicySettings(lr=LR, dc_lambda=0.2, dc_adaptive=True)
    state = ServerState(torch.ones(D), make_policy("dc_asgd", settings))
    v, _ = state.pull(0)
    state.push(dense(torch.full((D,), 0.5)), v, worker=0)
    ms_before = state.policy.state_dict()["ms"]
    v, _ = state.pull(0)
    with pytest.raises(RejectedPush, match="overflows"):
        state.push(sparse([2], [1e30]), v, worker=0)  # c*c is Inf in float32
    assert torch.equal(state.policy.state_dict()["ms"], ms_before)
    assert bool(torch.isfinite(state.policy.state_dict()["ms"]).all())
    assert state.rejected["non_finite"] == 1 and state.version == 1


def test_a_push_is_accepted_once_per_pull():
    state = ServerState(torch.zeros(D), make_policy("vanilla", PolicySettings(lr=LR)))
    version, _ = state.pull(0)
    state.push(sparse([0], [1.0]), version, worker=0)
    with pytest.raises(RejectedPush, match="no outstanding pull"):
        state.push(sparse([0], [1.0]), version, worker=0)  # a replay


def test_changed_since_rebuilds_every_copy_bit_for_bit():
    gen = torch.Generator().manual_seed(3)
    state = ServerState(
        torch.randn(D, generator=gen),
        make_policy("vanilla", PolicySettings(lr=LR)),
        track_changes=True,
    )
    copies = {w: (state.version, state.x.clone()) for w in range(3)}
    for step in range(30):
        idx = sorted(torch.randperm(D, generator=gen)[:3].tolist())
        state.push(sparse(idx, torch.randn(3, generator=gen).tolist()), state.version)
        w = step % 3
        version, copy = copies[w]
        changed = state.changed_since(version)
        copy[changed] = state.x[changed]
        copies[w] = (state.version, copy)
        assert torch.equal(copy.view(torch.int32), state.x.view(torch.int32))
        assert changed.numel() <= 3 * 3  # at most the entries of the pushes in between


def test_server_state_round_trips_through_state_dict():
    settings = PolicySettings(lr=LR, dc_lambda=0.2, dc_adaptive=True)
    a = ServerState(
        torch.ones(D), make_policy("dc_asgd", settings), momentum=0.9, track_changes=True
    )
    gen = torch.Generator().manual_seed(4)
    for _ in range(3):
        v, _ = a.pull(0)
        a.push(dense(torch.randn(D, generator=gen)), v, worker=0)
    b = ServerState(
        torch.zeros(D), make_policy("dc_asgd", settings), momentum=0.9, track_changes=True
    )
    b.load_state_dict(a.state_dict())
    g = torch.randn(D, generator=gen)
    for s in (a, b):
        v, _ = s.pull(0)
        s.push(dense(g), v, worker=0)
    assert torch.equal(a.x, b.x) and a.version == b.version == 4
    assert a.staleness_summary() == b.staleness_summary()


def test_a_push_above_max_push_is_refused_as_too_large():
    policy = make_policy("vanilla", PolicySettings(lr=LR))
    state = ServerState(torch.zeros(D), policy, max_push=10.0)
    with pytest.raises(RejectedPush, match=r"too_large.*magnitude 1e\+30 > max_push 10"):
        state.push(sparse([1], [1e30]), 0)
    state.push(sparse([1], [-10.0]), 0)  # |c_i| = max_push is allowed
    assert state.rejected["too_large"] == 1 and state.version == 1


@pytest.mark.parametrize(
    ("loss", "norm", "reason"),
    [
        (float("nan"), 1.0, "non_finite"),
        (0.5, float("inf"), "non_finite"),
        (0.5, -1.0, "malformed"),
        ("0.5", 1.0, "malformed"),
    ],
)
def test_a_bad_report_beside_a_push_is_refused(loss, norm, reason):
    state = ServerState(torch.zeros(D), make_policy("vanilla", PolicySettings(lr=LR)))
    with pytest.raises(RejectedPush, match=reason):
        state.check_report(loss, norm)
    assert state.rejected[reason] == 1
    state.check_report(0.5, 0.0)  # a good report passes
