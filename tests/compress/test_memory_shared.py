"""Residual memories sharing one p buffer (SharedBuffer) keep exactly the residuals that
memories with their own buffers keep, whether the caller edits p in place or not."""

from __future__ import annotations

import pytest
import torch

from sparsgd.compress.memory import ResidualMemory, SharedBuffer

from .cases import assert_memories_agree_in_turn

D = 64


@pytest.mark.parametrize("in_place", [True, False])
def test_shared_buffer_memories_keep_the_residuals_of_own_buffer_memories(in_place):
    shared = SharedBuffer()
    own = [ResidualMemory(D) for _ in range(3)]
    lent = [ResidualMemory(D) for _ in range(3)]
    for memory in lent:
        memory.share_buffer(shared)
    assert_memories_agree_in_turn([own, lent], D, in_place)
    # the lent memories hold one vector each, the pool one more, told apart by storage
    held = {m.e.untyped_storage().data_ptr() for m in lent}
    held.add(shared.tensor.untyped_storage().data_ptr())
    assert len(held) == len(lent) + 1
    assert all(m._p is None for m in lent)


def test_shared_buffer_survives_a_state_round_trip():
    shared = SharedBuffer()
    a, b = ResidualMemory(D), ResidualMemory(D)
    b.share_buffer(shared)
    a.e = torch.randn(D, generator=torch.Generator().manual_seed(2))
    b.load_state_dict(a.state_dict())
    g = torch.ones(D)
    assert torch.equal(b.compensate(g), a.e + g)
    assert b.compensate(g).data_ptr() == shared.tensor.data_ptr()  # p lives in the shared one


def test_shared_buffer_is_remade_for_another_size_or_dtype():
    shared, cpu = SharedBuffer(), torch.device("cpu")
    first = shared.get(4, torch.float32, cpu)
    assert shared.get(4, torch.float32, cpu) is first
    assert shared.get(5, torch.float32, cpu).shape == (5,)
    assert shared.get(5, torch.float64, cpu).dtype == torch.float64
