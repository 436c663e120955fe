"""Residuals flat per bucket layout against per-parameter error feedback kept apart."""

from __future__ import annotations

import pytest
import torch

from sparsgd.compress.checks import NonFiniteError
from sparsgd.sync.bucket_residuals import BucketResiduals

SIZES = [6, 3, 5, 2]  # numel of parameters 0..3


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_residuals_follow_their_parameters_through_layout_changes():
    """Layouts as DDP's rebuild makes them; every step p and e match a reference that keeps
    each parameter's residual apart (p_j = e_j + g_j, e_j <- p_j with its top entry sent)."""
    memory = BucketResiduals(SIZES)
    reference = {j: torch.zeros(n) for j, n in enumerate(SIZES)}
    schedule = [[(3, 2, 1, 0)], [(3, 2), (1, 0)], [(3, 2), (1, 0)], [(2,), (0, 1, 3)], [(3, 2)]]
    for step, layouts in enumerate(schedule):
        for b, layout in enumerate(layouts):
            g = torch.randn(sum(SIZES[j] for j in layout), generator=_gen(10 * step + b))
            p = memory.compensate(layout, g)
            want = torch.cat([reference[j] + g_j for j, g_j in _split(layout, g)])
            assert torch.equal(p, want), f"step {step}, layout {layout}"
            residual = p.clone()
            residual[p.abs().argmax()] = 0  # what a top-1 compressor leaves behind
            memory.update_(layout, residual)
            for j, e_j in _split(layout, residual):
                reference[j] = e_j.clone()
        for j in range(len(SIZES)):
            assert torch.equal(memory.residual(j), reference[j]), f"step {step}, parameter {j}"


def test_a_non_finite_gradient_changes_nothing():
    memory = BucketResiduals(SIZES)
    layout = (0, 1)
    memory.update_(layout, memory.compensate(layout, torch.ones(9)))
    before = [memory.residual(j).clone() for j in range(len(SIZES))]
    bad = torch.ones(9)
    bad[4] = float("nan")
    with pytest.raises(NonFiniteError, match="gradient must be finite; got 1 NaN"):
        memory.compensate(layout, bad)
    with pytest.raises(NonFiniteError, match="gradient must be finite"):
        memory.compensate((2, 3), torch.full((7,), float("inf")))  # a new layout: not built
    assert all(torch.equal(memory.residual(j), e) for j, e in enumerate(before))
    with pytest.raises(NonFiniteError, match="residual must be finite"):
        memory.update_(layout, bad)


def test_loaded_residuals_seed_the_next_layout_and_bad_input_is_named():
    memory = BucketResiduals(SIZES)
    e1 = torch.arange(3.0)
    memory.load_(1, e1)
    g = torch.randn(11, generator=_gen(0))
    assert torch.equal(memory.compensate((0, 1, 3), g)[6:9], e1 + g[6:9])
    with pytest.raises(ValueError, match=r"residual of parameter 2 must have numel=5"):
        memory.load_(2, torch.zeros(4))
    with pytest.raises(ValueError, match=r"g must have numel=5 entries; got 4"):
        memory.compensate((2,), torch.zeros(4))
    with pytest.raises(ValueError, match=r"distinct parameter indices in \[0, 4\); got \(1, 1\)"):
        memory.compensate((1, 1), torch.zeros(6))
    with pytest.raises(ValueError, match=r"layout \(2,\) has no residuals"):
        memory.update_((2,), torch.zeros(5))


def _split(layout: tuple[int, ...], flat: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    out, start = [], 0
    for j in layout:
        out.append((j, flat[start : start + SIZES[j]]))
        start += SIZES[j]
    return out
