"""Memories: their update rules, state round-trips, and the non-finite policy."""

from __future__ import annotations

import io

import pytest
import torch

from sparsgd.compress.base import residual_after
from sparsgd.compress.checks import NonFiniteError
from sparsgd.compress.memory import MEMORIES, Memory, make_memory

from .cases import build

D = 500


def _step(memory: Memory, g: torch.Tensor, density: float = 0.05) -> None:
    p = memory.compensate(g)
    msg = build("topk").compress(p, density)
    memory.update_(residual_after(p, msg), msg.indices)


def _state(memory: Memory) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in memory.state_dict().items()}


@pytest.mark.parametrize("name", sorted(MEMORIES))
def test_is_a_memory(name: str) -> None:
    memory = make_memory(name, D)
    assert isinstance(memory, Memory) and memory.name == name


def test_residual_rule() -> None:
    memory = make_memory("residual", D)
    g1, g2 = torch.randn(D), torch.randn(D)
    p1 = memory.compensate(g1)
    assert torch.equal(p1, g1)  # e starts at 0
    msg = build("topk").compress(p1, 0.1)
    residual = residual_after(p1, msg)
    memory.update_(residual, msg.indices)
    assert torch.equal(memory.compensate(g2), residual + g2)


def test_dgc_rule() -> None:
    m = 0.5
    memory = make_memory("dgc", D, momentum=m)
    g1, g2 = torch.randn(D), torch.randn(D)
    p1 = memory.compensate(g1)  # u = g1, v = g1
    assert torch.equal(p1, g1)
    msg = build("topk").compress(p1, 0.1)
    sent = msg.indices.long()
    memory.update_(residual_after(p1, msg), msg.indices)
    u = g1.clone()
    u[sent] = 0
    v = g1.clone()
    v[sent] = 0
    p2 = memory.compensate(g2)
    assert torch.equal(p2, v + (m * u + g2))  # same operation order, so bit-equal


@pytest.mark.parametrize("name", sorted(MEMORIES))
def test_state_round_trip(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    a = make_memory(name, D)
    for _ in range(3):
        _step(a, torch.randn(D, generator=gen))
    b = make_memory(name, D)
    b.load_state_dict(a.state_dict())
    assert {k: v.tolist() for k, v in _state(b).items()} == {
        k: v.tolist() for k, v in _state(a).items()
    }
    g = torch.randn(D, generator=gen)
    assert torch.equal(a.compensate(g), b.compensate(g))  # same next step


@pytest.mark.parametrize("name", sorted(MEMORIES))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_gradient_refused_before_state_changes(name: str, bad: float) -> None:
    memory = make_memory(name, D)
    _step(memory, torch.randn(D))
    before = _state(memory)
    g = torch.randn(D)
    g[7] = bad
    with pytest.raises(NonFiniteError, match="gradient must be finite"):
        memory.compensate(g)
    after = _state(memory)
    assert all(torch.equal(before[k], after[k]) for k in before)
    _step(memory, torch.randn(D))  # the memory still works: the bad step was simply skipped


@pytest.mark.parametrize("name", ["residual", "dgc"])
def test_non_finite_residual_refused(name: str) -> None:
    memory = make_memory(name, D)
    p = memory.compensate(torch.randn(D))
    before = _state(memory)
    residual = p.clone()
    residual[3] = float("nan")
    with pytest.raises(NonFiniteError, match="residual must be finite"):
        memory.update_(residual, torch.tensor([0]))
    after = _state(memory)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_dgc_update_needs_compensate() -> None:
    memory = make_memory("dgc", D)
    with pytest.raises(RuntimeError, match="compensate"):
        memory.update_(torch.zeros(D), torch.tensor([0]))


def test_residual_memory_keeps_its_dtype() -> None:
    memory = make_memory("residual", D, dtype=torch.float64)
    p = memory.compensate(torch.randn(D, dtype=torch.float64))
    memory.update_(p, torch.tensor([], dtype=torch.int64))
    assert memory.e.dtype == torch.float64 and torch.equal(memory.e, p)


@pytest.mark.parametrize(("name", "key"), [("residual", "e"), ("dgc", "u"), ("dgc", "v")])
def test_non_finite_saved_state_refused(name: str, key: str) -> None:
    memory = make_memory(name, D)
    _step(memory, torch.randn(D))
    before = _state(memory)
    damaged = _state(memory)
    damaged[key][5] = float("inf")
    with pytest.raises(NonFiniteError, match=rf"state\['{key}'\] must be finite"):
        memory.load_state_dict(damaged)
    after = _state(memory)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_an_all_zero_residual_is_saved_as_one_zero() -> None:
    """A fresh (or flushed) residual: the state holds one zero expanded to d, a checkpoint a
    few hundred bytes, and loading gives d zeros back; one -0.0 keeps the whole vector."""
    d = 100_000
    memory = make_memory("residual", d)
    e = memory.state_dict()["e"]
    assert e.shape == (d,) and e.stride() == (0,) and e.untyped_storage().nbytes() == 4
    saved = io.BytesIO()
    torch.save(memory.state_dict(), saved)
    assert len(saved.getvalue()) < 4096  # d float32 would be 400 KB
    saved.seek(0)
    again = make_memory("residual", d)
    again.load_state_dict(torch.load(saved, weights_only=True))
    assert again.e.is_contiguous() and torch.equal(again.e, torch.zeros(d))
    again.e[7] = -0.0  # all compare equal to 0, but the bits differ: kept whole
    kept = again.state_dict()["e"]
    assert kept.stride() == (1,) and kept.view(torch.int32)[7] == torch.tensor(-0.0).view(
        torch.int32
    )
