"""topk_indices is exact: the same index set as the sort-based reference, ties to lower index."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsgd.compress import candidates, topk
from sparsgd.compress.checks import NonFiniteError
from sparsgd.compress.topk import FAST_MIN_NUMEL, sample_positions, topk_indices
from sparsgd.compress.topk_reference import topk_reference

# Small integers as floats: many exact duplicates, so the tie rule decides most selections.
tied_values = st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=200)
# The path fixture sets one switch for the whole test; hypothesis may reuse it across examples.
with_fixture = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _assert_same(x: torch.Tensor, k: int) -> None:
    got = topk_indices(x, k)
    want = topk_reference(x, k)
    assert got.dtype == torch.int64
    assert torch.equal(got, want), f"k={k}: got {got.tolist()[:10]}, want {want.tolist()[:10]}"


def _fast_path_everywhere():
    """Send even tiny inputs through the sampled fast path, in chunks of 7 entries.

    Only tuning constants change: the code that runs is the real fast path, and tiny
    inputs let hypothesis shrink a failure to a readable example.
    """
    return (
        mock.patch.object(topk, "FAST_MIN_NUMEL", 1),
        mock.patch.object(topk, "FAST_MAX_DENSITY", 1.0),
        mock.patch.object(candidates, "CHUNK", 7),
    )


@with_fixture
@given(values=tied_values, data=st.data())
def test_matches_reference_with_ties(
    selection_path: str, values: list[float], data: st.DataObject
) -> None:
    x = torch.tensor(values)
    k = data.draw(st.integers(1, len(values)), label="k")
    _assert_same(x, k)


@with_fixture
@given(values=tied_values, data=st.data())
def test_fast_path_matches_reference_with_ties(
    selection_path: str, values: list[float], data: st.DataObject
) -> None:
    """The sampled path at every size and density (the compiled one takes the same plan)."""
    x = torch.tensor(values)
    k = data.draw(st.integers(1, len(values)), label="k")
    p1, p2, p3 = _fast_path_everywhere()
    with p1, p2, p3:
        _assert_same(x, k)


@with_fixture
@given(values=tied_values, data=st.data())
def test_torch_small_path_matches_reference_with_ties(
    fallback: None, values: list[float], data: st.DataObject
) -> None:
    """The small path off CPU (torch.topk of k + 1), run here by telling topk numpy is out."""
    x = torch.tensor(values)
    k = data.draw(st.integers(1, len(values)), label="k")
    with mock.patch.object(topk, "numpy_ok", lambda x: False):
        _assert_same(x, k)


@pytest.mark.parametrize("small_path", ["partition", "torch"])
def test_small_paths_tie_at_border_go_exact(fallback: None, small_path: str) -> None:
    """v_k == v_{k+1}: neither small path trusts its own choice among the tied entries."""
    x = torch.tensor([0.5, 2.0, -3.0, 2.0, 1.0, -2.0, 0.0, 2.0])  # 2.0 four times, one negative
    numpy_ok = candidates.numpy_ok if small_path == "partition" else (lambda x: False)
    spy = mock.patch.object(topk, "_exact_over_all", wraps=topk._exact_over_all)
    with mock.patch.object(topk, "numpy_ok", numpy_ok), spy as exact_over_all:
        for k in (2, 3, 4):  # the border falls among the four tied entries
            _assert_same(x, k)
        assert exact_over_all.call_count == 3
        _assert_same(x, 1)  # v_1 = 3 > v_2 = 2: no tie, answered without the exact path
        assert exact_over_all.call_count == 3


@pytest.mark.parametrize("small_path", ["partition", "torch"])
@pytest.mark.parametrize("n_bad", [1, 3, 6])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_small_paths_refuse_non_finite(
    fallback: None, small_path: str, n_bad: int, bad: float
) -> None:
    """Fewer, as many as and more non-finite entries than k = 3: each must be noticed."""
    x = torch.randn(1000, generator=torch.Generator().manual_seed(n_bad))
    x[torch.arange(n_bad) * 97 + 5] = bad
    numpy_ok = candidates.numpy_ok if small_path == "partition" else (lambda x: False)
    refused = pytest.raises(NonFiniteError, match="x must be finite")
    with mock.patch.object(topk, "numpy_ok", numpy_ok), refused:
        topk_indices(x, 3)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31 - 1),
    levels=st.integers(1, 50),
    density=st.sampled_from([1e-4, 1e-3, 1e-2, 0.05]),
)
def test_large_inputs_with_ties(
    selection_path: str, seed: int, levels: int, density: float
) -> None:
    """Real sizes (fast path, real chunking): values drawn from only ``levels`` magnitudes."""
    g = torch.Generator().manual_seed(seed)
    d = FAST_MIN_NUMEL + 123
    x = torch.randint(-levels, levels + 1, (d,), generator=g).float()
    _assert_same(x, max(1, int(density * d)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 2, 5, 1000, FAST_MIN_NUMEL + 1])
def test_dtypes_and_sizes(selection_path: str, dtype: torch.dtype, d: int) -> None:
    g = torch.Generator().manual_seed(d)
    x = torch.randn(d, generator=g).to(dtype)
    for k in sorted({1, max(1, d // 1000), max(1, d // 10), d}):
        _assert_same(x, k)


def test_all_zero_and_all_equal(selection_path: str) -> None:
    d = FAST_MIN_NUMEL * 2
    for x in (torch.zeros(d), torch.full((d,), -2.5)):
        _assert_same(x, 100)


@pytest.mark.parametrize("tied", [False, True])
def test_sample_that_misjudges_still_exact(selection_path: str, tied: bool) -> None:
    """Large values exactly on the sample positions, small ones elsewhere: the threshold comes
    out far too high, every candidate pass finds fewer than k, and the fallback must be exact
    (the compiled path takes it inside its one call, so only the fallback's is counted)."""
    d = 4 * FAST_MIN_NUMEL
    k = d // 20  # below FAST_MAX_DENSITY, so the fast path runs
    g = torch.Generator().manual_seed(1)
    x = torch.randn(d, generator=g)
    on_sample = torch.zeros(d, dtype=torch.bool)
    on_sample[sample_positions(d, k)] = True
    n_on = int(on_sample.sum())
    assert n_on < k  # so the sample's largest values cannot supply k candidates
    x[on_sample] = 5.0 if tied else 5.0 + torch.rand(n_on, generator=g)
    x[~on_sample] = torch.rand(d - n_on, generator=g) * 4.0  # all below the sample's values
    spy = mock.patch.object(topk, "_exact_over_all", wraps=topk._exact_over_all)
    with spy as exact_over_all:
        _assert_same(x, k)
    want_calls = 1 if selection_path == "fallback" else 0
    assert exact_over_all.call_count == want_calls  # the misjudgement was noticed, corrected


def test_infinite_magnitudes_are_refused(selection_path: str) -> None:
    for d in (10, 4 * FAST_MIN_NUMEL):
        for bad in (float("nan"), float("inf"), float("-inf")):
            x = torch.randn(d)
            x[d // 3] = bad
            with pytest.raises(NonFiniteError, match="x must be finite"):
                topk_indices(x, max(1, d // 1000))


def test_does_not_modify_input(selection_path: str) -> None:
    x = torch.randn(3 * FAST_MIN_NUMEL)
    before = x.clone()
    topk_indices(x, 100)
    assert torch.equal(x, before)
