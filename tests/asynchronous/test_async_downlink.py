"""Sparse downlink on the wire: a change set the frame would carry DENSE (zeros where nothing
changed) must be the whole model, or a worker that writes the frame over its copy would zero
the entries that did not change (async_fleet.received is what the endpoint delivers)."""

from __future__ import annotations

import pytest
import torch
from async_fleet import Fleet

from sparsgd.asynchronous.config import AsyncConfig

pytestmark = pytest.mark.timeout(120)

CFG = AsyncConfig(
    mode="async", workers=2, steps=1000, lr=0.1, batch_size=16, density=0.1, sparse_downlink=True
)


def test_a_pull_that_changed_most_of_x_arrives_whole():
    fleet = Fleet.start(CFG, None)
    fleet.pull(0)
    fleet.pull(1)
    d = fleet.core.state.numel
    changed = []
    for _ in range(12):  # worker 0 alone moves x; worker 1 still computes on version 0
        fleet.cycle(0)
        changed.append(int(fleet.core.state.changed_since(0).numel()))
    assert changed[0] < d / 2 <= changed[-1]  # at last, most of x changed since version 0
    fleet.cycle(1)  # its pull: the whole model (it checks its copy against x, async_fleet)
    fleet.cycle(0)
    fleet.cycle(1)  # one or two updates since its copy: a small change set
    ((w1, v1, nnz1), (w2, v2, nnz2)) = [m for m in fleet.models if m[0] == 1][-2:]
    assert (w1, v1, nnz1) == (1, 13, d)
    assert (w2, v2) == (1, 15) and 0 < nnz2 < d / 2
    assert torch.equal(fleet.copies[1], fleet.core.state.x)
