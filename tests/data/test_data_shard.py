"""shard: disjoint, covering, equal-sized and deterministic shards (hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import TensorDataset

from sparsgd.data import shard, shard_bounds, shard_indices


@st.composite
def layouts(draw: st.DrawFn) -> tuple[int, int, int]:
    size = draw(st.integers(min_value=1, max_value=400))
    world = draw(st.integers(min_value=1, max_value=min(size, 16)))
    seed = draw(st.integers(min_value=0, max_value=2**31 - 1))
    return size, world, seed


@settings(max_examples=100, deadline=None)
@given(layout=layouts(), drop_remainder=st.booleans())
def test_sample_shards_are_disjoint_and_cover(layout, drop_remainder: bool) -> None:
    size, world, seed = layout
    shards = [shard_indices(size, r, world, seed, drop_remainder) for r in range(world)]
    everything = torch.cat(shards)
    assert everything.unique().numel() == everything.numel()  # disjoint
    assert int(everything.min()) >= 0 and int(everything.max()) < size
    sizes = {s.numel() for s in shards}
    if drop_remainder:
        assert sizes == {size // world}
        assert everything.numel() == size - size % world
    else:
        assert max(sizes) - min(sizes) <= 1
        assert sorted(everything.tolist()) == list(range(size))  # covers every sample
    again = shard_indices(size, world - 1, world, seed, drop_remainder)
    assert torch.equal(again, shards[-1])  # deterministic


@settings(max_examples=100, deadline=None)
@given(layout=layouts(), drop_remainder=st.booleans())
def test_stream_shards_are_contiguous(layout, drop_remainder: bool) -> None:
    size, world, _ = layout
    stream = torch.arange(size) * 3
    pieces = [shard(stream, r, world, 0, drop_remainder) for r in range(world)]
    joined = torch.cat(pieces)
    kept = size - size % world if drop_remainder else size
    assert torch.equal(joined, stream[:kept])  # in order, no overlap, no gap
    assert max(p.numel() for p in pieces) - min(p.numel() for p in pieces) <= (
        0 if drop_remainder else 1
    )


def test_dataset_shard_keeps_rows_together() -> None:
    x = torch.arange(20.0).view(10, 2)
    y = torch.arange(10)
    part = shard(TensorDataset(x, y), 1, 3, seed=4)
    px, py = part.tensors
    assert len(part) == 3
    assert torch.equal(px, x[py])  # the labels still belong to their samples


def test_seed_changes_the_assignment() -> None:
    assert not torch.equal(shard_indices(100, 0, 4, 0), shard_indices(100, 0, 4, 1))


@pytest.mark.parametrize(
    ("rank", "world", "size", "error", "message"),
    [
        (0, 11, 10, ValueError, "world must be <= the number of training samples"),
        (3, 3, 10, ValueError, r"rank must be in \[0, world=3\); got 3"),
        (0, 0, 10, ValueError, "world must be >= 1; got 0"),
        (0.5, 2, 10, TypeError, "rank must be an int; got 0.5"),
    ],
)
def test_bad_layouts(rank, world, size, error, message) -> None:
    with pytest.raises(error, match=message):
        shard_indices(size, rank, world, 0)
    with pytest.raises(error, match=message):
        shard_bounds(size, rank, world)


def test_shard_refuses_other_types() -> None:
    with pytest.raises(TypeError, match=r"got Tensor of shape \(2, 2\)"):
        shard(torch.zeros(2, 2), 0, 1, 0)
