"""Rank bodies for tests/faults/test_no_pickle.py (module level, so that ranks import them)."""

from __future__ import annotations

from typing import Any

import torch

from sparsgd.comm.launch import WorkerContext
from sparsgd.sync.state_wire import all_gather_state, broadcast_state, gather_state, scatter_state


def state_of(rank: int) -> dict[str, Any]:
    """A state shaped like a checkpoint part, different (and of a different size) per rank."""
    return {
        "step": 7 + rank,
        "tuple": (rank, "a" * (rank + 1), None),
        0: {"momentum_buffer": torch.arange(rank + 2, dtype=torch.float64) / 3},
        "rng": torch.Generator().manual_seed(rank).get_state(),
        "flags": torch.tensor([True, rank % 2 == 1]),
        "nan": float("nan") if rank else 1.5,
    }


def run_state_collectives(ctx: WorkerContext) -> dict[str, Any]:
    """Every collective of state_wire once; the results come back to the test to compare."""
    rank, world = ctx.rank, ctx.world_size
    return {
        "broadcast": broadcast_state(state_of(0) if rank == 0 else None, 0, ctx.device),
        "gathered": gather_state(state_of(rank), 0, ctx.device),
        "scattered": scatter_state(
            [state_of(r) for r in range(world)] if rank == 0 else None, 0, ctx.device
        ),
        "all": all_gather_state(state_of(rank), ctx.device),
    }
