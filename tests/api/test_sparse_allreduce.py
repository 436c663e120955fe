"""``sparsgd.SparseAllreduce``: a plain step on one process, S-SGD on an initialised group."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import sparsgd
from sparsgd.comm.launch import LaunchOptions, WorkerContext, launch
from sparsgd.sim.collectives import simulate

WORLD = 3
STEPS = 3
DENSITY = 0.2
LR = 0.1


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))


def _gradients(model: nn.Module, rank: int, step: int) -> None:
    """A fixed gradient per (rank, step), written into ``param.grad``."""
    generator = torch.Generator().manual_seed(1000 * step + rank)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=generator)


@pytest.mark.slow
def test_not_distributed_is_the_plain_optimizer_bit_for_bit():
    ours, plain = _model(), _model()
    wrapped = sparsgd.SparseAllreduce(
        torch.optim.SGD(ours.parameters(), lr=LR, momentum=0.9), density=DENSITY
    )
    reference = torch.optim.SGD(plain.parameters(), lr=LR, momentum=0.9)
    for step in range(STEPS):
        _gradients(ours, 0, step)
        _gradients(plain, 0, step)
        assert wrapped.step() is None
        reference.step()
        wrapped.zero_grad()
        reference.zero_grad()
    for a, b in zip(ours.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="density must be in"):
        sparsgd.SparseAllreduce(torch.optim.SGD(_model().parameters(), lr=LR), density=1.5)


def _rank_run(ctx: WorkerContext) -> list[torch.Tensor]:
    rank, world = ctx.rank, ctx.world_size
    model = _model()
    opt = sparsgd.SparseAllreduce(torch.optim.SGD(model.parameters(), lr=LR), density=DENSITY)
    assert opt.world_size == world
    for step in range(STEPS):
        _gradients(model, rank, step)
        opt.step()
        opt.zero_grad()
    return [p.detach().clone() for p in model.parameters()]


def _reference() -> list[torch.Tensor]:
    """The same steps with simulate("gtopk") over WORLD simulated ranks and plain SGD."""
    model = _model()
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=LR)
    residuals = [torch.zeros(sum(p.numel() for p in params)) for _ in range(WORLD)]
    for step in range(STEPS):
        ps = []
        for rank in range(WORLD):
            _gradients(model, rank, step)
            g = torch.cat([p.grad.reshape(-1) for p in params])
            ps.append(residuals[rank] + g)  # p = e + g
        reduced = simulate("gtopk", ps, DENSITY)
        residuals = [r.residual for r in reduced]
        average = reduced[0].total / WORLD
        offset = 0
        for p in params:
            p.grad = average[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        optimizer.step()
    return [p.detach() for p in params]


@pytest.mark.multiprocess
def test_three_ranks_equal_the_one_process_reference():
    ranks = launch(_rank_run, WORLD, (), LaunchOptions(timeout_s=120.0), deadline_s=120.0)
    reference = _reference()
    for rank, params in enumerate(ranks):
        for got, want in zip(params, reference, strict=True):
            assert torch.equal(got, want), rank
