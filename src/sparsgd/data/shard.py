"""Each worker's own part of the training data: disjoint, deterministic, equal by default.

Samples (classification, a TensorDataset of N samples), with perm a permutation of 0..N-1
drawn from a generator seeded with ``seed`` (the same on every rank):

    kept        = perm[: (N // P) * P]        # drop_remainder=True (default): N mod P dropped
                  perm                        # drop_remainder=False: sizes differ by at most 1
    shard(rank) = sorted(kept[rank :: P])

Token streams (language, a (N,) tensor) keep their order, which is their content: rank ``r``
gets the contiguous piece ``ids[r * (N // P) : (r + 1) * (N // P)]`` (with
``drop_remainder=False`` the first ``N mod P`` pieces are one token longer). ``seed`` does
not enter: there is nothing to shuffle.

Every sample goes to at most one rank, and with ``drop_remainder=False`` to exactly one.
Equal shards matter for synchronous SGD: every rank must run the same number of steps per
epoch, or the collectives of the longer ranks wait forever.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from sparsgd.data.bundle import Split, split_size

__all__ = ["check_world", "shard", "shard_bounds", "shard_indices"]


def check_world(rank: int, world: int, size: int) -> None:
    """``world`` in [1, size] and ``rank`` in [0, world), each error naming the value."""
    for name, value in (("rank", rank), ("world", world)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int; got {value!r}")
    if world < 1:
        raise ValueError(f"world must be >= 1; got {world}")
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in [0, world={world}); got {rank}")
    if world > size:
        raise ValueError(
            f"world must be <= the number of training samples ({size}) so that every worker "
            f"gets data; got world={world}"
        )


def shard_indices(
    size: int, rank: int, world: int, seed: int, drop_remainder: bool = True
) -> Tensor:
    """Ascending int64 indices of ``rank``'s samples among ``size`` (see the module docstring)."""
    check_world(rank, world, size)
    perm = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    if drop_remainder:
        perm = perm[: (size // world) * world]
    return torch.sort(perm[rank::world]).values


def shard_bounds(size: int, rank: int, world: int, drop_remainder: bool = True) -> tuple[int, int]:
    """``[start, stop)`` of ``rank``'s contiguous piece of a ``size``-token stream."""
    check_world(rank, world, size)
    piece, extra = divmod(size, world)
    if drop_remainder:
        return rank * piece, (rank + 1) * piece
    start = rank * piece + min(rank, extra)
    return start, start + piece + (1 if rank < extra else 0)


def shard(data: Split, rank: int, world: int, seed: int, drop_remainder: bool = True) -> Split:
    """``rank``'s shard of ``data``: a TensorDataset of its samples, or its piece of a stream."""
    if isinstance(data, TensorDataset):
        index = shard_indices(len(data), rank, world, seed, drop_remainder)
        return TensorDataset(*(tensor[index] for tensor in data.tensors))
    if isinstance(data, Tensor) and data.dim() == 1:
        start, stop = shard_bounds(split_size(data), rank, world, drop_remainder)
        return data[start:stop].clone()
    raise TypeError(
        "data must be a TensorDataset (samples) or a 1-D tensor (token stream); "
        f"got {type(data).__name__}"
        + (f" of shape {tuple(data.shape)}" if isinstance(data, Tensor) else "")
    )
