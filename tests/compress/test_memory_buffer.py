"""ResidualMemory's owned p buffer: reused, conservation kept, in-place residual swapped in."""

from __future__ import annotations

import torch

from sparsgd.compress.memory import ResidualMemory
from sparsgd.compress.momentum import DGCMemory
from sparsgd.compress.registry import make_compressor

DGC_ATOL = 1e-6  # float32 rounding of one step's sums of |values| below about 10
SUM_ATOL = 1e-4  # float32 rounding of 5 steps of |p| ~ 3 at d = 1000, summed in float64


def test_compensate_reuses_one_buffer() -> None:
    memory = ResidualMemory(100)
    g = torch.randn(100)
    p1 = memory.compensate(g)
    ptr = p1.data_ptr()
    memory.update_(torch.zeros(100), torch.arange(100))
    p2 = memory.compensate(g)
    assert p2.data_ptr() == ptr  # the same buffer, no allocation
    assert torch.equal(p2, g)  # e was reset to 0 by the update


def test_in_place_residual_swaps_and_conserves() -> None:
    """p edited in place into the residual: e takes it without a copy, nothing is lost."""
    d = 1000
    memory = ResidualMemory(d)
    compressor = make_compressor("topk")
    g = torch.Generator().manual_seed(0)
    total_g = torch.zeros(d, dtype=torch.float64)
    total_sent = torch.zeros(d, dtype=torch.float64)
    for _ in range(5):
        grad = torch.randn(d, generator=g)
        total_g += grad.double()
        p = memory.compensate(grad)
        msg = compressor.compress(p, 0.01)
        total_sent += msg.to_dense(torch.float64)
        residual = msg.subtract_from_(p)
        memory.update_(residual, msg.indices.long())
        assert memory.e.data_ptr() == residual.data_ptr()  # swapped in, not copied
        assert memory.compensate(torch.zeros(d)).data_ptr() != memory.e.data_ptr()
        foreign = residual.clone()
        memory.update_(foreign, msg.indices.long())  # a residual the memory does not own
        assert memory.e.data_ptr() != foreign.data_ptr() and torch.equal(memory.e, foreign)
    assert torch.allclose(memory.e.double() + total_sent, total_g, atol=SUM_ATOL)


def test_wider_gradient_gets_its_own_p() -> None:
    memory = ResidualMemory(10)
    g = torch.randn(10, dtype=torch.float64)
    p = memory.compensate(g)
    assert p.dtype == torch.float64 and torch.equal(p, g)


def test_dgc_buffers_swap_and_keep_the_invariant() -> None:
    """new v + sent == old v + (m old u + g), with p edited in place into the residual."""
    d, m = 500, 0.9
    memory = DGCMemory(d, momentum=m)
    compressor = make_compressor("topk")
    g = torch.Generator().manual_seed(1)
    pointers = set()
    for _ in range(4):
        grad = torch.randn(d, generator=g)
        old_u, old_v = memory.u.clone(), memory.v.clone()
        p = memory.compensate(grad)
        pointers.add(p.data_ptr())
        msg = compressor.compress(p, 0.02)
        sent = msg.to_dense(torch.float32)
        memory.update_(msg.subtract_from_(p), msg.indices.long())
        gap = (memory.v + sent) - (old_v + (m * old_u + grad))
        assert float(gap.abs().max()) <= DGC_ATOL
        assert torch.all(memory.u[msg.indices.long()] == 0)
    assert len(pointers) <= 2  # p lives in one of two buffers that trade places with v
