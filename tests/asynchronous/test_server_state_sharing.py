"""The server's x is never written in place (pulls share it), and the bound that proves a step
finite without reading x (asynchronous.server_finite) never calls an overflowing step finite."""

from __future__ import annotations

import math

import pytest
import torch

from sparsgd.asynchronous.policies import PolicySettings, make_policy
from sparsgd.asynchronous.server_finite import StepBound, max_abs_bound
from sparsgd.asynchronous.server_state import RejectedPush, ServerState
from sparsgd.compress.message import SparseMessage

D = 12
LR = 0.1
F32_MAX = torch.finfo(torch.float32).max


def _state(policy: str = "vanilla", momentum: float = 0.0, workers: int = 1) -> ServerState:
    x0 = torch.linspace(-1.0, 1.0, D)
    return ServerState(x0, make_policy(policy, PolicySettings(lr=LR)), momentum, workers=workers)


def _one(index: int, value: float) -> SparseMessage:
    return SparseMessage(torch.tensor([index], dtype=torch.int32), torch.tensor([value]), D)


@pytest.mark.parametrize(
    ("policy", "momentum"), [("vanilla", 0.0), ("vanilla", 0.9), ("dc_asgd", 0.0)]
)
def test_a_pulled_model_keeps_its_version_while_later_pushes_are_applied(policy, momentum):
    state = _state(policy, momentum)
    version, x_pulled = state.pull(0)
    kept = x_pulled.clone()
    reference = x_pulled.clone()
    for step in range(4):
        c = torch.full((D,), 0.5 + step)
        state.push(c, version, worker=0)
        version, _ = state.pull(0)
        if policy == "vanilla" and momentum == 0:  # x <- x - eta c, as torch.optim.SGD
            reference = reference.add(c, alpha=-LR)
    assert torch.equal(x_pulled, kept)  # still x_0, bit for bit
    assert state.x is not x_pulled and not torch.equal(state.x, kept)
    if policy == "vanilla" and momentum == 0:
        assert torch.equal(state.x, reference)


def test_dc_asgd_workers_that_pulled_one_version_share_one_tensor():
    state = _state("dc_asgd", workers=3)
    for w in range(3):
        state.pull(w)
    x0 = state.pulled_models[0]
    assert state.pulled_models[1] is x0 and state.pulled_models[2] is x0
    kept = x0.clone()
    state.push(torch.full((D,), 0.25), 0, worker=0)  # x_1; workers 1 and 2 still hold x_0
    assert torch.equal(state.pulled_models[1], kept) and state.pulled_models[1] is x0


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_a_step_the_bound_calls_finite_is_finite_and_within_the_bound(dtype):
    """Steps near the largest value of each dtype: the bound is never below max |x_new|."""
    gen = torch.Generator().manual_seed(5)
    top = torch.finfo(dtype).max
    proved = refused = 0
    for _ in range(400):
        scale = top * float(torch.rand((), generator=gen)) / 2
        x = ((torch.rand(64, generator=gen, dtype=torch.float64) * 2 - 1) * scale).to(dtype)
        c = torch.randn(64, generator=gen, dtype=torch.float64) * scale
        rate = float(torch.rand((), generator=gen)) * 2
        bound = StepBound(x)
        largest = float(c.abs().max())
        after = bound.after(rate, largest)
        x_new = x.add(c.to(dtype), alpha=-rate)
        if after is None:
            refused += 1
            continue
        proved += 1
        assert bool(torch.isfinite(x_new).all())
        assert float(x_new.double().abs().max()) <= after
    assert proved > 50 and refused > 50  # both sides of the limit were drawn


def test_the_bound_proves_nothing_for_nan_inf_or_an_entry_beyond_the_dtype():
    assert StepBound(torch.tensor([1.0, float("nan")])).after(0.1, 1.0) is None
    assert StepBound(torch.tensor([1.0, float("inf")])).after(0.1, 1.0) is None
    assert StepBound(torch.zeros(3)).after(0.1, float("nan")) is None
    assert StepBound(torch.zeros(3)).after(1e-3, 1e39) is None  # Inf once cast to float32
    assert StepBound(torch.zeros(3)).after(1e39, 1.0) is None


@pytest.mark.parametrize("flush_denormal", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_dot_product_bound_is_never_below_the_largest_entry(dtype, flush_denormal):
    """(4) of server_finite over the whole range: subnormal to overflowing squares, one
    large entry among many small ones, many equal ones; with denormals flushed or not."""
    if flush_denormal and not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    gen = torch.Generator().manual_seed(6)
    info = torch.finfo(dtype)
    low, high = math.log2(info.smallest_normal) - 20, math.log2(info.max)
    finite = 0
    try:
        for trial in range(600):
            n = int(torch.randint(1, 2000, (), generator=gen))
            exponent = low + (high - low) * float(torch.rand((), generator=gen))
            c = torch.randn(n, generator=gen, dtype=torch.float64) * 2.0**exponent
            if trial % 3 == 1:
                c[int(torch.randint(n, (), generator=gen))] = 2.0 ** (exponent + 10)
            if trial % 3 == 2:
                c.fill_(2.0**exponent)
            c = c.to(dtype)
            largest = float(c.double().abs().max())
            if not math.isfinite(largest):
                continue
            bound = max_abs_bound(c)
            assert bound >= largest, (trial, n, exponent)
            finite += math.isfinite(bound)
    finally:
        torch.set_flush_denormal(False)
    assert finite > 300  # most draws gave a finite bound, so the comparison was made


def test_the_dot_product_bound_tells_nothing_of_nan_inf_or_narrow_dtypes():
    assert max_abs_bound(torch.zeros(0)) == 0.0
    assert math.isnan(max_abs_bound(torch.tensor([1.0, float("nan")])))
    assert math.isinf(max_abs_bound(torch.tensor([1.0, float("-inf")])))
    assert math.isinf(max_abs_bound(torch.tensor([3e38, 1.0])))  # the square overflows
    assert math.isinf(max_abs_bound(torch.ones(4, dtype=torch.float16)))  # aminmax decides


def test_overflow_is_refused_exactly_when_an_entry_leaves_float32():
    """lr 1, pushes of 1e38 on entry 0: -1e38, -2e38, -3e38 are finite, -4e38 is not."""
    state = ServerState(torch.zeros(D), make_policy("vanilla", PolicySettings(lr=1.0)))
    for k in (1, 2, 3):
        state.push(_one(0, 1e38), state.version)
        assert float(state.x[0]) == pytest.approx(-k * 1e38, rel=1e-6)
    assert state.bound.value is None  # 2e38 is past max / 2: the sum decided from then on
    with pytest.raises(RejectedPush, match="overflows"):
        state.push(_one(0, 1e38), state.version)
    assert state.version == 3 and float(state.x[0]) == pytest.approx(-3e38, rel=1e-6)
    assert 3e38 < F32_MAX < 4e38


@pytest.mark.parametrize(("policy", "momentum"), [("vanilla", 0.9), ("dc_asgd", 0.0)])
def test_the_bound_is_lost_after_a_step_it_cannot_follow_and_found_again_on_load(policy, momentum):
    state = _state(policy, momentum)
    assert state.bound.value == pytest.approx(1.0)  # B_0 = max |x0|
    version, _ = state.pull(0)
    state.push(torch.full((D,), 0.5), version, worker=0)
    assert state.bound.value is None
    state.load_state_dict(state.state_dict())
    assert state.bound.value == float(state.x.abs().max())


def test_a_plain_step_carries_the_bound_without_reading_x():
    state = _state()
    grow = 1 + 4 * torch.finfo(torch.float32).eps
    expected = 1.0  # B_0 = max |x0|
    for value in (3.0, -5.0, 2.0):
        version, _ = state.pull(0)
        c = torch.full((D,), value)
        state.push(c, version, worker=0)
        largest = max_abs_bound(c)  # L of the push check: at least |value| (server_finite (4))
        assert abs(value) <= largest <= abs(value) * math.sqrt(D) * 1.001
        expected = (expected + LR * largest) * grow  # B_{t+1} = (B_t + eta L)(1 + 4 eps)
        assert state.bound.value == expected
        assert float(state.x.abs().max()) <= state.bound.value
