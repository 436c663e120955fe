"""The gTop-k merge rule: union summed, k kept by magnitude, ties to the lower index; with the
compiled merge and with the torch one (the ``selection_path`` fixture)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsgd.comm.gtopk import merge
from sparsgd.compress import kernels
from sparsgd.compress.checks import NonFiniteError
from sparsgd.compress.message import SparseMessage
from sparsgd.compress.topk_reference import topk_reference

NUMEL = 64


def entries(pairs: dict[int, float]) -> SparseMessage:
    indices = sorted(pairs)
    return SparseMessage(
        torch.tensor(indices, dtype=torch.int64), torch.tensor([pairs[i] for i in indices]), NUMEL
    )


def dense(e: SparseMessage) -> torch.Tensor:
    return e.to_dense(torch.float32)


def test_shared_indices_are_added_then_k_kept_by_magnitude(selection_path: str) -> None:
    a = entries({1: 3.0, 4: -1.0, 9: 0.5})
    b = entries({4: -2.5, 7: 2.0, 9: -0.25})
    kept, dropped = merge(a, b, 2)
    assert kept.indices.tolist() == [1, 4]  # |-3.5| at 4 and |3.0| at 1 beat |2.0| at 7
    assert kept.values.tolist() == [3.0, -3.5]
    assert dropped.indices.tolist() == [7, 9]
    assert dropped.values.tolist() == [2.0, 0.25]


def test_ties_go_to_the_lower_index_whatever_the_argument_order(selection_path: str) -> None:
    a = entries({10: 2.0, 3: -1.0})
    b = entries({5: -2.0, 30: 2.0})
    for first, second in ((a, b), (b, a)):
        kept, dropped = merge(first, second, 2)
        assert kept.indices.tolist() == [5, 10]
        assert dropped.indices.tolist() == [3, 30]


def test_small_union_keeps_everything_and_drops_nothing(selection_path: str) -> None:
    kept, dropped = merge(entries({2: 1.0}), entries({2: 1.0, 6: -4.0}), 5)
    assert kept.indices.tolist() == [2, 6] and kept.values.tolist() == [2.0, -4.0]
    assert dropped.indices.numel() == 0


@pytest.mark.parametrize("k", [1, 2])  # k = 2: the whole union is kept, no top-k runs
def test_finite_values_whose_sum_overflows_raise(selection_path: str, k: int) -> None:
    a, b = entries({3: 3e38, 9: 1.0}), entries({3: 3e38, 9: 2.0})
    with pytest.raises(NonFiniteError, match="must be finite; got 0 NaN and 1 Inf"):
        merge(a, b, k)


def test_bad_k_is_refused():
    with pytest.raises(ValueError, match="k must be an integer >= 1; got 0"):
        merge(entries({1: 1.0}), entries({2: 1.0}), 0)


pair_sets = st.dictionaries(
    st.integers(0, NUMEL - 1),
    st.integers(-4, 4).map(lambda v: v / 2),  # a coarse grid: many ties and exact sums
    min_size=1,
    max_size=20,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pair_sets, pair_sets, st.integers(1, 24))
def test_kept_plus_dropped_is_the_union_and_kept_is_its_topk(selection_path: str, pa, pb, k):
    a, b = entries(pa), entries(pb)
    kept, dropped = merge(a, b, k)
    union = dense(a) + dense(b)
    assert torch.equal(dense(kept) + dense(dropped), union)  # nothing lost, nothing doubled
    support = sorted(set(pa) | set(pb))
    assert kept.indices.numel() == min(k, len(support))
    assert set(kept.indices.tolist()) | set(dropped.indices.tolist()) == set(support)
    assert not set(kept.indices.tolist()) & set(dropped.indices.tolist())
    assert torch.equal(kept.indices, torch.sort(kept.indices).values)
    # the kept set is the exact top-k of the union restricted to its support
    on_support = union[torch.tensor(support)]
    chosen = topk_reference(on_support, min(k, len(support)))
    assert kept.indices.tolist() == [support[i] for i in chosen.tolist()]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_both_paths_give_the_same_bits(dtype: torch.dtype) -> None:
    """Signed zeros and shared indices included: the compiled merge adds into zeros too."""
    g = torch.Generator().manual_seed(7)
    sets = []
    for _ in range(2):
        idx = torch.sort(torch.randperm(4000, generator=g)[:1500]).values
        values = torch.randn(1500, generator=g)
        values[::5], values[1::5] = -0.0, 0.0
        sets.append(SparseMessage(idx, values.to(dtype), 4000))
    results = []
    for on in (True, False):
        previous = kernels.set_enabled(on)
        try:
            results.append(merge(sets[0], sets[1], 700))
        finally:
            kernels.set_enabled(previous)
    for got, want in zip(results[0], results[1], strict=True):
        assert torch.equal(got.indices, want.indices)
        assert torch.equal(got.values, want.values)
        assert torch.equal(got.values.signbit(), want.values.signbit())
