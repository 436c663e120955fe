"""The binomial tree of gTop-k for any number of ranks P >= 1 (pure integer arithmetic).

Reduction (docs/algorithms.md section 3, item 2), rounds r = 0 .. R - 1 with R = ceil(log2 P):
a rank that is a multiple of 2^(r+1) receives from ``rank + 2^r`` if that rank exists; the
sender then drops out. Seen from one rank j > 0 with t = (number of trailing zero bits of j):

    children(j) = [j + 2^r for r in 0 .. t - 1 if j + 2^r < P]   # received in rounds 0 .. t-1
    parent(j)   = j - 2^t                                         # sent to in round t

and rank 0 receives from ``2^r`` for every r < R. A rank whose partner does not exist (P not a
power of two) simply waits for its next round, so P = 3, 6, 7, 12 ... need nothing special.

Broadcast runs the same tree backwards: every rank receives once from its parent, then sends
to its children, the largest subtree first. Rank 0 sends R messages and receives R, so the
critical path is 2 ceil(log2 P) messages; any other rank sends and receives fewer.
"""

from __future__ import annotations

__all__ = ["children", "n_rounds", "parent"]


def n_rounds(world: int) -> int:
    """``ceil(log2 world)``: the number of reduction (and of broadcast) rounds."""
    _check(0, world)
    return (world - 1).bit_length()


def children(rank: int, world: int) -> list[int]:
    """The ranks ``rank`` receives from during the reduction, in round order."""
    _check(rank, world)
    rounds = n_rounds(world) if rank == 0 else (rank & -rank).bit_length() - 1
    return [rank + (1 << r) for r in range(rounds) if rank + (1 << r) < world]


def parent(rank: int) -> int:
    """Where ``rank`` (> 0) sends its merged set: ``rank`` with its lowest set bit cleared."""
    if rank < 1:
        raise ValueError(f"rank must be >= 1 (rank 0 is the root and has no parent); got {rank}")
    return rank & (rank - 1)


def _check(rank: int, world: int) -> None:
    if world < 1:
        raise ValueError(f"world size must be >= 1; got {world}")
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in [0, {world}); got {rank}")
