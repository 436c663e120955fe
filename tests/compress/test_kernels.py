"""The compiled selection loops give exactly what the numpy/torch path gives.

Each compiled call is compared with the same call made with the loops switched off, on
inputs chosen to reach its branches: thresholds of every sign and kind for the candidate pass
(its float32 test works on the bits), more candidates than its first buffer holds, runs of
ties for the quickselect, NaN and Inf off the sample positions, float64.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
import torch

from sparsgd.compress import kernels, topk
from sparsgd.compress.candidates import candidates_at_least, select_exact
from sparsgd.compress.checks import NonFiniteError
from sparsgd.compress.message import gather_message
from sparsgd.compress.registry import make_compressor
from sparsgd.compress.scratch import Scratch
from sparsgd.compress.topk import kernel_plan, sample_positions, topk_indices
from sparsgd.compress.topk_reference import topk_reference

pytestmark = pytest.mark.skipif(
    kernels._select is None, reason="the compiled selection was not built (no C compiler)"
)


def _both(fn: Callable[[], Any]) -> tuple[Any, Any]:
    """``fn()`` with the compiled loops, then without them."""
    previous = kernels.set_enabled(True)
    try:
        compiled = fn()
        kernels.set_enabled(False)
        return compiled, fn()
    finally:
        kernels.set_enabled(previous)


def _inputs(d: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(d)
    zeros = torch.zeros(d)
    zeros[:: max(1, d // 10)] = -1.5  # a few nonzero among exact zeros (+0 and -0 below)
    zeros[1::3] = -0.0
    return {
        "randn": torch.randn(d, generator=g),
        "ties": torch.randint(-3, 4, (d,), generator=g).float(),
        "zeros": zeros,
        "tiny": torch.randn(d, generator=g) * 1e-40,  # subnormal magnitudes
    }


@pytest.fixture(params=["avx2", "portable"])
def simd(request: pytest.FixtureRequest) -> Iterator[str]:
    """The float32 candidate pass in its AVX2 version (where the CPU has it) and portable."""
    previous = kernels.set_simd(request.param == "avx2")
    try:
        yield request.param
    finally:
        kernels.set_simd(previous)


@pytest.mark.parametrize("d", [1, 31, 32, 33, 1000, 70001])
@pytest.mark.parametrize(
    "t", [-1.0, -0.0, 0.0, 1e-41, 0.5, 1.5, 2.0, 1e30, float("inf"), float("nan")]
)
def test_candidates_match_the_numpy_pass(d: int, t: float, simd: str) -> None:
    for name, x in _inputs(d).items():
        (idx, mag), (want_idx, want_mag) = _both(lambda x=x: candidates_at_least(x, t))
        assert torch.equal(idx, want_idx), f"{name}: indices differ at t={t}"
        assert torch.equal(mag, want_mag), f"{name}: magnitudes differ at t={t}"
        assert torch.equal(*_both(lambda x=x: candidates_at_least(x.double(), t)[0]))


@pytest.mark.parametrize("cap", [0, 5, 8, 100, 10_000])
@pytest.mark.parametrize("t", [0.5, 2.0, 3.5])
def test_packed_candidates_fill_cap_then_count_on(cap: int, t: float, simd: str) -> None:
    """The pass as topk calls it when it expects many candidates (pack: whole-lane stores,
    handing over to the block loop when fewer than 8 slots are left): the first cap
    candidates stored in order, all of them counted."""
    x = torch.randn(5003, generator=torch.Generator().manual_seed(3))
    want = (x.abs() >= t).nonzero().squeeze(1)
    idx = torch.full((cap + 8,), -1, dtype=torch.int64)  # 8 more: nothing may land there
    mag = torch.full((cap + 8,), -1.0)
    count = kernels._select.candidates(
        x.data_ptr(), x.numel(), 0, t, idx.data_ptr(), mag.data_ptr(), cap, True
    )
    stored = min(cap, want.numel())
    assert count == want.numel()
    assert torch.equal(idx[:stored], want[:stored])
    assert torch.equal(mag[:stored], x.abs()[want[:stored]])
    assert bool((idx[cap:] == -1).all()) and bool((mag[cap:] == -1.0).all())


def test_candidates_beyond_the_first_buffer() -> None:
    """More candidates than DEFAULT_CAP: the loop counts them all, is given room, passes again;
    the grown buffer then serves later calls."""
    x = torch.randn(4 * kernels.DEFAULT_CAP, generator=torch.Generator().manual_seed(2))
    scratch = Scratch()
    idx, mag = kernels.candidates(x, 0.1, scratch)
    want = (x.abs() >= 0.1).nonzero().squeeze(1)
    assert want.numel() > kernels.DEFAULT_CAP
    assert torch.equal(idx, want) and torch.equal(mag, x.abs()[want])
    assert scratch.capacity("kernel_idx") == want.numel()
    idx2, _ = kernels.candidates(x, 0.1, scratch)  # no growth now
    assert torch.equal(idx2, want) and scratch.capacity("kernel_idx") == want.numel()


@pytest.mark.parametrize("m", [1, 2, 7, 500, 20000])
def test_select_matches_the_torch_rule(m: int) -> None:
    g = torch.Generator().manual_seed(m)
    indices = torch.sort(torch.randperm(10 * m, generator=g)[:m]).values
    for magnitudes in (torch.rand(m, generator=g), torch.randint(0, 4, (m,), generator=g).float()):
        for k in sorted({1, max(1, m // 3), m - 1 if m > 1 else 1, m}):
            got, want = _both(lambda mag=magnitudes, k=k: select_exact(indices, mag, k))
            assert torch.equal(got, want), f"m={m} k={k}"


@pytest.mark.parametrize("d", [1, 5, 300, 4096, 100_003])
@pytest.mark.parametrize("density", [1e-3, 0.05, 0.5, 1.0])
def test_topk_message_is_the_gathered_message(d: int, density: float, simd: str) -> None:
    """The compressor's one compiled call: the indices of the exact top-k as int32 and the
    values of x there, as gather_message would build them."""
    compressor = make_compressor("topk")
    for name, x in _inputs(d).items():
        k = max(1, int(density * d))
        msg = compressor.compress(x, density)
        want = gather_message(x, topk_reference(x, k))
        assert msg.indices.dtype == torch.int32 == want.indices.dtype, name
        assert torch.equal(msg.indices, want.indices), name
        assert torch.equal(msg.values, want.values), name  # -0.0 and +0.0 alike
        assert torch.equal(msg.values.signbit(), want.values.signbit()), name  # and the sign


@pytest.mark.parametrize("d", [1000, 300_007])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_off_the_sample_is_refused(d: int, bad: float) -> None:
    """A single NaN/Inf where the sample does not look: the candidate pass still meets it."""
    k = max(1, d // 1000)
    x = torch.randn(d, generator=torch.Generator().manual_seed(1))
    sampled = torch.zeros(d, dtype=torch.bool)
    sampled[sample_positions(d, k)] = True
    at = int((~sampled).nonzero()[len((~sampled).nonzero()) // 2])
    x[at] = bad
    with pytest.raises(NonFiniteError, match="x must be finite"):
        topk_indices(x, k)
    with pytest.raises(NonFiniteError, match="x must be finite"):
        make_compressor("topk").compress(x, k / d)


def test_plan_samples_below_the_dense_limit_only() -> None:
    start, stride, ranks = kernel_plan(10**6, 1000)
    assert stride > 0 and start == stride // 2 and ranks[0] <= ranks[1] <= ranks[2]
    assert kernel_plan(1000, 500)[1] == 0  # k above FAST_MAX_DENSITY d: all of x at once


def test_switch_falls_back() -> None:
    """With the loops off, usable() says no and the result is the same."""
    x = torch.randn(5000, generator=torch.Generator().manual_seed(3))
    previous = kernels.set_enabled(False)
    try:
        assert not kernels.usable(x)
        assert torch.equal(topk_indices(x, 7), topk_reference(x, 7))
    finally:
        kernels.set_enabled(previous)
    assert kernels.usable(x) == kernels.built()
    assert not kernels.usable(x[::2]) and not kernels.usable(x.half())


def test_message_of_2_31_entries_or_more_is_not_compiled() -> None:
    """The compiled message writes int32 indices; from 2**31 entries the compressor gathers
    (int64 indices). Checked with the limit lowered, not with an 8 GB tensor."""
    x = torch.randn(100, generator=torch.Generator().manual_seed(4))
    compressor = make_compressor("topk")
    spy = mock.patch.object(kernels, "topk_message", wraps=kernels.topk_message)
    with spy as compiled:
        compressor.compress(x, 0.05)
        assert compiled.call_count == 1
        with mock.patch.object(topk, "INT32_LIMIT", 100):
            msg = make_compressor("topk").compress(x, 0.05)  # fresh: (d, rho) not yet known
        assert compiled.call_count == 1  # the gather path answered
    assert torch.equal(msg.indices.long(), topk_reference(x, 5))


def test_one_compressor_over_sizes_that_grow_and_shrink() -> None:
    """The compressor's work buffer grows with d (the remembered addresses lapse with it):
    every call, on sizes up, down and up again, is still the exact top-k."""
    compressor = make_compressor("topk")
    gen = torch.Generator().manual_seed(5)
    for d in (100, 5_000, 100, 70_000, 5_000, 100):
        x = torch.randn(d, generator=gen)
        msg = compressor.compress(x, 0.02)
        assert torch.equal(msg.indices.long(), topk_reference(x, max(1, int(0.02 * d))))
        assert torch.equal(msg.values, x[msg.indices.long()])
        live = compressor._work.data_ptr()  # no remembered address of a freed buffer
        assert all(work == live for _, _, work in compressor._plans.values())


@pytest.mark.parametrize("kind", ["randn", "ties"])
def test_packed_pass_inside_topk_on_a_large_x(kind: str, simd: str) -> None:
    """From 2**21 entries at density 1e-2 the compiled topk asks for the packed candidate pass
    (topk's own call, sample and ladder included): still the exact top-k and its values."""
    d = (1 << 21) + 5
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(d, generator=gen)
    if kind == "ties":  # runs of equal magnitudes around the k-th: the tie rule decides
        x = torch.randint(-40, 41, (d,), generator=gen).float()
    msg = make_compressor("topk").compress(x, 0.01)
    want = gather_message(x, topk_reference(x, int(0.01 * d)))
    assert torch.equal(msg.indices, want.indices)
    assert torch.equal(msg.values, want.values)


@pytest.mark.parametrize("d", [300_000, (1 << 21) + 5])
def test_values_keep_their_sign_and_negative_zero(d: int, simd: str) -> None:
    """The candidates keep x's signed values (the message takes them from there, not from
    x): with more of k than non-zeros the threshold is zero and -0.0 entries are chosen,
    each with its sign bit, as the gathered message has it."""
    gen = torch.Generator().manual_seed(10)
    x = torch.full((d,), -0.0)
    x[1::2] = 0.0
    picks = torch.randint(d, (d // 200,), generator=gen)
    x[picks] = torch.randn(picks.numel(), generator=gen)
    msg = make_compressor("topk").compress(x, 0.01)
    want = gather_message(x, topk_reference(x, int(0.01 * d)))
    assert torch.equal(msg.indices, want.indices)
    assert torch.equal(msg.values.view(torch.int32), want.values.view(torch.int32))
    assert bool((msg.values.view(torch.int32) == torch.tensor(-0.0).view(torch.int32)).any())
