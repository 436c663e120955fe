"""randomk: uniform without replacement, scaled version unbiased, seeded by its generator."""

from __future__ import annotations

import math

import pytest
import torch

from sparsgd.compress.base import decompress
from sparsgd.compress.randomk import RandomKCompressor, sample_without_replacement

# A fixed seed makes every statistical test below deterministic; the bounds are 5 standard
# errors, which a correct sampler would exceed with probability below 1e-6 per coordinate.
Z = 5.0
TRIALS = 4000


def test_scaled_randomk_is_unbiased() -> None:
    """E[C(x)] = x: each coordinate's mean over TRIALS draws is within Z standard errors.

    C(x)_i = (d/k) x_i with probability k/d, else 0, so Var C(x)_i = x_i^2 (d/k - 1).
    """
    d, k = 40, 4
    x = torch.linspace(-2.0, 3.0, d)
    comp = RandomKCompressor(scaled=True, seed=11)
    total = torch.zeros(d, dtype=torch.float64)
    for _ in range(TRIALS):
        total += decompress(comp.compress(x, k / d)).double()
    mean = total / TRIALS
    std_err = x.double().abs() * math.sqrt(d / k - 1) / math.sqrt(TRIALS)
    assert bool(((mean - x.double()).abs() <= Z * std_err + 1e-12).all())


def test_unscaled_randomk_contracts_in_expectation() -> None:
    """E||x - C(x)||^2 = (1 - k/d) ||x||^2 for unscaled randomk (docs/algorithms.md section 1)."""
    d, k = 50, 10
    x = torch.randn(d, generator=torch.Generator().manual_seed(1)).double()
    comp = RandomKCompressor(seed=12)
    errs = torch.tensor(
        [
            float((x - decompress(comp.compress(x.float(), k / d)).double()).pow(2).sum())
            for _ in range(TRIALS)
        ],
        dtype=torch.float64,
    )
    expected = (1 - k / d) * float(x.pow(2).sum())
    std_err = float(errs.std()) / math.sqrt(TRIALS)
    assert abs(float(errs.mean()) - expected) <= Z * std_err


@pytest.mark.parametrize(("d", "k"), [(30, 3), (30, 20)])  # both sampling regimes
def test_inclusion_is_uniform_and_without_replacement(d: int, k: int) -> None:
    """Each index is kept with probability k/d; a draw never repeats an index."""
    g = torch.Generator().manual_seed(13)
    counts = torch.zeros(d)
    for _ in range(TRIALS):
        idx = sample_without_replacement(d, k, g)
        assert idx.numel() == k and bool((idx[1:] > idx[:-1]).all())
        counts[idx] += 1
    p = k / d
    std_err = math.sqrt(TRIALS * p * (1 - p))
    assert bool(((counts - TRIALS * p).abs() <= Z * std_err).all())


def test_same_seed_same_selection_and_different_seeds_differ() -> None:
    x = torch.randn(10_000)
    a = RandomKCompressor(seed=5).compress(x, 0.01)
    b = RandomKCompressor(seed=5).compress(x, 0.01)
    c = RandomKCompressor(seed=6).compress(x, 0.01)
    assert torch.equal(a.indices, b.indices)
    assert not torch.equal(a.indices, c.indices)
