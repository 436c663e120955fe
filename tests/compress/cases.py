"""The compressor configurations every test runs, and the conservation check they share."""

from __future__ import annotations

from typing import Any

import torch

from sparsgd.compress.base import Compressor
from sparsgd.compress.registry import COMPRESSORS, make_compressor

# Settings for each registry name (threshold needs its h; the random ones get a seed).
SETTINGS: dict[str, dict[str, Any]] = {
    "dense": {},
    "topk": {},
    "randomk": {"seed": 3},
    "randomk_scaled": {"seed": 3, "scaled": True},
    "threshold": {"threshold": 1.0},
    "sampled": {"seed": 3},
}
assert {n.removesuffix("_scaled") for n in SETTINGS} == set(COMPRESSORS)


def build(label: str, **extra: Any) -> Compressor:
    return make_compressor(label.removesuffix("_scaled"), **SETTINGS[label], **extra)


# Conservation holds up to a few float32 roundings (p = e + g, the scaling s p, p - s p, the
# cast to the value dtype and back), each at most eps/2 of the largest operand it touches; so
# per element |lhs - rhs| <= 8 eps * (sum of the magnitudes involved) leaves a margin of two.
CONSERVATION_RTOL = 8 * torch.finfo(torch.float32).eps


def assert_conserved(lhs: list[torch.Tensor], rhs: list[torch.Tensor]) -> None:
    """sum(lhs) == sum(rhs) element-wise, up to CONSERVATION_RTOL of the magnitudes."""
    left = sum(t.double() for t in lhs)
    right = sum(t.double() for t in rhs)
    magnitude = sum(t.double().abs() for t in [*lhs, *rhs])
    gap = (left - right).abs()
    worst = int(torch.argmax(gap - CONSERVATION_RTOL * magnitude))
    assert bool((gap <= CONSERVATION_RTOL * magnitude).all()), (
        f"not conserved at {worst}: {float(left[worst])} vs {float(right[worst])}"
    )


def assert_memories_agree_in_turn(groups: list[list[Any]], d: int, in_place: bool) -> None:
    """Step every list of memories in ``groups`` alike, one memory at a time (as the
    simulator's workers step): memory ``step % n`` of each list compensates the same
    gradient, sends its top-k at density 0.1 and keeps the rest (p edited in place, or a
    fresh residual); after each step every list holds the same residuals, bit for bit."""
    gen = torch.Generator().manual_seed(1)
    compressor = make_compressor("topk")
    n = len(groups[0])
    for step in range(5 * n):
        g = torch.randn(d, generator=gen)
        for memories in groups:
            p = memories[step % n].compensate(g)
            msg = compressor.compress(p, 0.1)
            residual = msg.subtract_from_(p) if in_place else p - msg.to_dense()
            memories[step % n].update_(residual, msg.indices.long())
        for kept in zip(*groups, strict=True):
            bits = [m.e.view(torch.int32) for m in kept]
            assert all(torch.equal(bits[0], b) for b in bits[1:]), f"step {step}"
    assert any(bool(m.e.abs().sum() > 0) for m in groups[0])  # the comparison saw residuals
