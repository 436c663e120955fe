"""Reused work buffers: results never alias them, and reuse never changes a selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsgd.compress import topk
from sparsgd.compress.candidates import candidates_at_least
from sparsgd.compress.registry import make_compressor
from sparsgd.compress.scratch import Scratch
from sparsgd.compress.topk import FAST_MIN_NUMEL, topk_indices
from sparsgd.compress.topk_reference import topk_reference


def test_take_reuses_and_grows() -> None:
    scratch = Scratch()
    a = scratch.take("a", 10, torch.float32, torch.device("cpu"))
    b = scratch.take("a", 5, torch.float32, torch.device("cpu"))
    assert b.data_ptr() == a.data_ptr()  # reused, not reallocated
    c = scratch.take("a", 20, torch.float32, torch.device("cpu"))
    assert c.numel() == 20 and scratch.nbytes() == 20 * 4
    with pytest.raises(ValueError, match="n must be >= 0; got -1"):
        scratch.take("a", -1, torch.float32, torch.device("cpu"))


def test_take_array_reuses_and_grows() -> None:
    scratch = Scratch()
    a = scratch.take_array("a", 10, np.dtype(np.float32))
    b = scratch.take_array("a", 5, np.dtype(np.float32))
    assert np.shares_memory(a, b) and b.size == 5  # reused, not reallocated
    c = scratch.take_array("a", 20, np.dtype(np.float64))  # another dtype: a new buffer
    assert c.size == 20 and not np.shares_memory(a, c)
    assert scratch.nbytes() == 20 * 8
    with pytest.raises(ValueError, match="n must be >= 0; got -1"):
        scratch.take_array("a", -1, np.dtype(np.float32))


@pytest.mark.parametrize("d", [1000, FAST_MIN_NUMEL + 7, 3 * FAST_MIN_NUMEL])
@pytest.mark.parametrize("k_of", [lambda d: 1, lambda d: d // 100, lambda d: d // 5, lambda d: d])
def test_shared_scratch_keeps_earlier_results(selection_path: str, d: int, k_of) -> None:
    """Two calls through one Scratch: the first answer survives the second call intact."""
    scratch = Scratch()
    g = torch.Generator().manual_seed(d)
    x1, x2 = torch.randn(d, generator=g), torch.randn(d, generator=g)
    k = k_of(d)
    first = topk_indices(x1, k, scratch)
    kept = first.clone()
    second = topk_indices(x2, k, scratch)
    assert torch.equal(first, kept)
    assert torch.equal(first, topk_reference(x1, k))
    assert torch.equal(second, topk_reference(x2, k))


def test_small_path_tie_at_border_goes_exact(selection_path: str) -> None:
    """v_k == v_{k+1}: torch.topk's choice among the tied is not trusted."""
    x = torch.tensor([1.0, 3.0, -2.0, 2.0, 2.0, 0.5])
    for k in range(1, 7):
        assert torch.equal(topk_indices(x, k), topk_reference(x, k))
    assert x.numel() < topk.FAST_MIN_NUMEL  # so the small path ran


def test_small_strided_input_matches_reference() -> None:
    """The small path (numpy partition) reads a strided view in place too."""
    x = torch.randn(2002, generator=torch.Generator().manual_seed(4))[::2]
    assert not x.is_contiguous() and x.numel() < FAST_MIN_NUMEL
    for k in (1, 10, 1001):
        assert torch.equal(topk_indices(x, k), topk_reference(x, k))


def test_strided_input_matches_reference() -> None:
    """The numpy pass reads a strided view in place (no contiguous copy needed)."""
    base = torch.randn(2 * (FAST_MIN_NUMEL + 11), generator=torch.Generator().manual_seed(3))
    x = base[::2]
    assert not x.is_contiguous()
    assert torch.equal(topk_indices(x, 100), topk_reference(x, 100))
    idx, mags = candidates_at_least(x, 2.5)
    want = (x.abs() >= 2.5).nonzero().squeeze(1)
    assert torch.equal(idx, want) and torch.equal(mags, x.abs()[want])


def test_compressor_repeats_are_identical(selection_path: str) -> None:
    compressor = make_compressor("topk")
    x = torch.randn(4 * FAST_MIN_NUMEL, generator=torch.Generator().manual_seed(5))
    a = compressor.compress(x, 0.001)
    b = compressor.compress(x, 0.001)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.values, b.values)
