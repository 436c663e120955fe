"""Residuals flat per bucket layout against per-parameter error feedback kept apart."""

from __future__ import annotations

import pytest
import torch

from sparsgd.compress.checks import NonFiniteError
from sparsgd.sync.bucket_residuals import BucketResiduals

SIZES = [6, 3, 5, 2]  # numel of parameters 0..3


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("in_place", [False, True], ids=["copied", "handed-over"])
def test_residuals_follow_their_parameters_through_layout_changes(in_place):
    """Layouts as DDP's rebuild makes them; every step p and e match a reference that keeps
    each parameter's residual apart (p_j = e_j + g_j, e_j <- p_j with its top entry sent).
    ``in_place``: the residual is made in p's own buffer, as a collective given p with
    overwrite=True does, so update_ swaps instead of copying."""
    memory = BucketResiduals(SIZES)
    reference = {j: torch.zeros(n) for j, n in enumerate(SIZES)}
    schedule = [[(3, 2, 1, 0)], [(3, 2), (1, 0)], [(3, 2), (1, 0)], [(2,), (0, 1, 3)], [(3, 2)]]
    for step, layouts in enumerate(schedule):
        for b, layout in enumerate(layouts):
            g = torch.randn(sum(SIZES[j] for j in layout), generator=_gen(10 * step + b))
            p = memory.compensate(layout, g)
            want = torch.cat([reference[j] + g_j for j, g_j in _split(layout, g)])
            assert torch.equal(p, want), f"step {step}, layout {layout}"
            residual = p if in_place else p.clone()
            residual[p.abs().argmax()] = 0  # what a top-1 compressor leaves behind
            memory.update_(layout, residual)
            for j, e_j in _split(layout, residual):
                reference[j] = e_j.clone()
        for j in range(len(SIZES)):
            assert torch.equal(memory.residual(j), reference[j]), f"step {step}, parameter {j}"


def test_a_handed_over_p_becomes_the_residual_without_a_copy():
    memory = BucketResiduals(SIZES)
    layout = (2, 0)
    g = torch.randn(11, generator=_gen(1))
    p = memory.compensate(layout, g)
    p[3] = 0  # the residual, made in p's buffer
    memory.update_(layout, p)
    assert memory.residual(2).data_ptr() == p.data_ptr()  # E is now p's memory
    assert torch.equal(torch.cat([memory.residual(2), memory.residual(0)]), p)
    g2 = torch.randn(11, generator=_gen(2))
    want = p + g2  # e + g, computed apart
    p2 = memory.compensate(layout, g2)
    assert p2.data_ptr() != p.data_ptr() and torch.equal(p2, want)
    # a residual held elsewhere is copied into E, no swap
    memory.update_(layout, torch.zeros(11))
    assert memory.residual(2).data_ptr() == p.data_ptr() and float(p.abs().sum()) == 0


def test_compensate_into_a_callers_buffer_and_without_the_finiteness_test():
    memory = BucketResiduals(SIZES)
    layout = (1, 3)
    memory.load_(1, torch.tensor([1.0, 2.0, 3.0]))
    out = torch.full((9,), 7.0)
    g = torch.randn(5, generator=_gen(3))
    got = memory.compensate(layout, g, out=out[4:])
    assert got.data_ptr() == out[4:].data_ptr()
    assert torch.equal(out[4:], torch.cat([torch.tensor([1.0, 2.0, 3.0]), torch.zeros(2)]) + g)
    assert torch.equal(out[:4], torch.full((4,), 7.0))  # nothing outside the slot
    with pytest.raises(ValueError, match=r"out must have numel=5 entries; got 4"):
        memory.compensate(layout, g, out=out[:4])
    bad = g.clone()
    bad[0] = float("inf")
    p = memory.compensate(layout, bad, check=False)  # the caller's collective tests p
    assert p[0] == float("inf")
    assert torch.equal(memory.residual(1), torch.tensor([1.0, 2.0, 3.0]))  # E not written


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
