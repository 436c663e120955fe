"""Residuals in a file (compress.spill): the residuals ResidualMemory keeps, bit for bit, with
nothing of the model's size left in memory per memory; the file is unlinked, every slot its
own; bad input raises before anything is written."""

from __future__ import annotations

import errno
from unittest import mock

import pytest
import torch

from sparsgd.compress.checks import NonFiniteError
from sparsgd.compress.memory import ResidualMemory, SharedBuffer
from sparsgd.compress.spill import ResidualFile, SpilledResidualMemory, check_residual_dir

from .cases import assert_memories_agree_in_turn

D = 257  # not a multiple of a page or a vector: partial tails are read and written too


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int32)


@pytest.mark.parametrize("in_place", [True, False])
def test_spilled_memories_keep_the_residuals_of_memories_in_memory(tmp_path, in_place):
    store, shared = ResidualFile(tmp_path, 3, D), SharedBuffer()
    kept = [ResidualMemory(D) for _ in range(3)]
    spilled = [SpilledResidualMemory(store, w, shared) for w in range(3)]
    assert_memories_agree_in_turn([kept, spilled], D, in_place)
    # nothing of D entries is held per spilled memory: one shared p for all of them
    assert all(not isinstance(v, torch.Tensor) for m in spilled for v in vars(m).values())


def test_a_wider_gradient_gives_the_sum_residual_memory_gives(tmp_path):
    g = torch.randn(D, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    e = torch.randn(D, generator=torch.Generator().manual_seed(3))
    kept, spilled = (
        ResidualMemory(D),
        SpilledResidualMemory(ResidualFile(tmp_path, 1, D), 0, SharedBuffer()),
    )
    kept.load_state_dict({"e": e})
    spilled.load_state_dict({"e": e})
    p_kept, p_spilled = kept.compensate(g), spilled.compensate(g)
    assert p_spilled.dtype == torch.float64 and torch.equal(p_kept, p_spilled)
    kept.update_(p_kept * 0.5, torch.arange(0))
    spilled.update_(p_spilled * 0.5, torch.arange(0))
    assert torch.equal(_bits(kept.e), _bits(spilled.e))  # stored as float32 by both


def test_slots_start_at_zero_and_are_separate(tmp_path):
    store = ResidualFile(tmp_path, 4, D)
    out = torch.full((D,), 7.0)
    assert torch.equal(store.read_into(3, out), torch.zeros(D))
    for slot in range(4):
        store.write(slot, torch.full((D,), float(slot + 1)))
    for slot in range(4):
        assert torch.equal(store.read_into(slot, out), torch.full((D,), float(slot + 1)))
    with pytest.raises(IndexError, match=r"slot must be in \[0, 4\); got 4"):
        store.read_into(4, out)
    with pytest.raises(ValueError, match="contiguous float32 CPU tensor"):
        store.write(0, torch.zeros(D, dtype=torch.float64))
    with pytest.raises(ValueError, match="t"):
        store.write(0, torch.zeros(D + 1))


def test_the_file_is_unlinked_and_goes_with_the_store(tmp_path):
    store = ResidualFile(tmp_path, 2, D)
    store.write(1, torch.ones(D))
    assert list(tmp_path.iterdir()) == []  # no name in the folder: nothing is left behind
    store.close()
    with pytest.raises(ValueError):
        store.read_into(0, torch.empty(D))  # closed: an error, not stale numbers


def test_non_finite_input_raises_before_anything_is_written(tmp_path):
    store = ResidualFile(tmp_path, 1, D)
    memory = SpilledResidualMemory(store, 0, SharedBuffer())
    e = torch.randn(D, generator=torch.Generator().manual_seed(4))
    memory.load_state_dict({"e": e})
    bad = e.clone()
    bad[5] = float("nan")
    with pytest.raises(NonFiniteError, match="gradient"):
        memory.compensate(bad)
    with pytest.raises(NonFiniteError, match="residual"):
        memory.update_(bad, torch.arange(0))
    with pytest.raises(NonFiniteError, match=r"state\['e'\]"):
        memory.load_state_dict({"e": bad})
    assert torch.equal(_bits(memory.e), _bits(e))  # unchanged by any of them
    with pytest.raises(ValueError, match=r"must have keys"):
        memory.load_state_dict({"e": e, "u": e})
    assert memory.state_dict()["e"].data_ptr() != memory.state_dict()["e"].data_ptr()


def test_bad_directories_are_named_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match=r"residual_dir must be an existing directory; got '"):
        check_residual_dir(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="existing directory"):
        ResidualFile(tmp_path / "file", 1, D)
    with pytest.raises(ValueError, match="slots must be"):
        ResidualFile(tmp_path, 0, D)


def test_a_failed_write_names_the_folder_and_the_reason(tmp_path):
    """A full disk (ENOSPC from pwritev) or a file that stops taking bytes: an OSError that
    names the residual folder, never a silent short write."""
    store = ResidualFile(tmp_path, 1, D)
    full = OSError(errno.ENOSPC, "No space left on device")
    with mock.patch("os.pwritev", side_effect=full), pytest.raises(OSError) as err:
        store.write(0, torch.ones(D))
    assert err.value.errno == errno.ENOSPC
    assert str(tmp_path) in str(err.value) and "No space left" in str(err.value)
    with mock.patch("os.preadv", return_value=0), pytest.raises(OSError, match="stopped at 0"):
        store.read_into(0, torch.empty(D))
