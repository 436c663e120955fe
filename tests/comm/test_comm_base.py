"""The reused buffers of the sparse collectives: cleared where written, refilled in place."""

from __future__ import annotations

import torch

from sparsgd.comm.base import Workspace, select_topk
from sparsgd.compress.base import residual_after
from sparsgd.compress.message import SparseMessage

NUMEL = 50


def message(pairs: dict[int, float]) -> SparseMessage:
    indices = sorted(pairs)
    values = torch.tensor([pairs[i] for i in indices])
    return SparseMessage(torch.tensor(indices, dtype=torch.int64), values, NUMEL)


def test_total_is_reused_and_cleared_only_where_the_last_call_wrote():
    work = Workspace()
    work.open_(NUMEL, torch.float32, torch.device("cpu"))
    buffer = work.total.data_ptr()
    work.add_to_total_(message({3: 1.0, 7: -2.0}))
    total = work.add_to_total_(message({7: 0.5, 9: 4.0}))  # summed where the sets overlap
    assert total.nonzero().flatten().tolist() == [3, 7, 9]
    assert total[[3, 7, 9]].tolist() == [1.0, -1.5, 4.0]
    work.open_(NUMEL, torch.float32, torch.device("cpu"))
    assert work.total.data_ptr() == buffer and not bool(work.total.any())
    assert torch.equal(work.add_to_total_(message({1: 2.0})), message({1: 2.0}).to_dense())


def test_residual_is_the_one_residual_rule_computed_in_place():
    gen = torch.Generator().manual_seed(3)
    work = Workspace()
    work.open_(NUMEL, torch.float32, torch.device("cpu"))
    buffer = work.residual.data_ptr()
    for _ in range(3):
        p = torch.randn(NUMEL, generator=gen)
        sent = select_topk(p, 5)
        got = work.residual_from_(p, sent)
        assert got.data_ptr() == buffer
        assert torch.equal(got, residual_after(p, sent))  # bit for bit, zero at sent
        assert not bool(got[sent.indices].any())


def test_a_new_size_gets_new_buffers_and_forgets_the_old_positions():
    work = Workspace()
    work.open_(NUMEL, torch.float32, torch.device("cpu"))
    work.add_to_total_(message({49: 1.0}))
    work.open_(10, torch.float64, torch.device("cpu"))  # index 49 no longer exists
    assert work.total.shape == (10,) and work.total.dtype == torch.float64
    assert not bool(work.total.any())


def test_a_handed_over_p_becomes_the_residual_with_the_same_bits():
    gen = torch.Generator().manual_seed(4)
    work = Workspace()
    work.open_(NUMEL, torch.float32, torch.device("cpu"))
    p = torch.randn(NUMEL, generator=gen)
    sent = select_topk(p, 5)
    expected = residual_after(p, sent)  # computed before p is handed over
    got = work.residual_from_(p, sent, overwrite=True)
    assert got.data_ptr() == p.data_ptr()  # no copy: p itself
    assert torch.equal(got, expected)
