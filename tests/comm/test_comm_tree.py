"""The gTop-k tree for every P: a spanning tree of depth ceil(log2 P) matching section 3."""

from __future__ import annotations

import math

import pytest

from sparsgd.comm.tree import children, n_rounds, parent

MAX_WORLD = 70  # covers powers of two, their neighbours, and the authors' failing 3, 6, 12


def round_rule_partners(world: int) -> dict[int, list[int]]:
    """receiver -> senders, straight from docs/algorithms.md section 3, round by round."""
    rounds = math.ceil(math.log2(world)) if world > 1 else 0
    partners: dict[int, list[int]] = {rank: [] for rank in range(world)}
    for r in range(rounds):
        for rank in range(0, world, 2 ** (r + 1)):
            if rank + 2**r < world:
                partners[rank].append(rank + 2**r)
    return partners


@pytest.mark.parametrize("world", range(1, MAX_WORLD + 1))
def test_children_follow_the_round_rule(world):
    expected = round_rule_partners(world)
    assert n_rounds(world) == (math.ceil(math.log2(world)) if world > 1 else 0)
    for rank in range(world):
        assert children(rank, world) == expected[rank]
        for child in children(rank, world):
            assert parent(child) == rank


@pytest.mark.parametrize("world", range(1, MAX_WORLD + 1))
def test_every_rank_reaches_the_root_within_the_rounds(world):
    for rank in range(1, world):
        hops, node = 0, rank
        while node != 0:
            node, hops = parent(node), hops + 1
        assert hops <= n_rounds(world)
    # rank 0 receives once per round; every rank's sends + receives fit in 2 ceil(log2 P)
    assert len(children(0, world)) == n_rounds(world)
    for rank in range(world):
        assert len(children(rank, world)) + (rank > 0) <= max(1, n_rounds(world))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="world size must be >= 1; got 0"):
        n_rounds(0)
    with pytest.raises(ValueError, match=r"rank must be in \[0, 3\); got 3"):
        children(3, 3)
    with pytest.raises(ValueError, match="rank 0 is the root"):
        parent(0)
