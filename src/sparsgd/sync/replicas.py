"""Keeping the P model replicas identical, and checking that they are.

S-SGD keeps one model per rank and relies on every rank applying the same update:

    x_0        identical on every rank: built from the run seed (models.build_model(seed=...))
    x_{t+1}    = x_t - lr * SGD(total_t / P)   with total_t identical on every rank (comm/)

so the parameters stay bit-identical without ever being sent. Two things are not covered by
that argument and are handled here:

- buffers that each rank updates from its own data (BatchNorm running statistics) drift
  apart; :func:`broadcast_buffers_` copies rank 0's into every rank before evaluation and
  checkpoints, so that all ranks evaluate the same model;
- a bug (or a non-deterministic kernel) would silently fork the replicas;
  :func:`check_replicas` compares a SHA-256 digest of every rank's parameters and raises on
  every rank when they differ (``--verify-every N``).
"""

from __future__ import annotations

import hashlib

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "ReplicaMismatch",
    "broadcast_buffers_",
    "check_replicas",
    "parameter_digest",
]


class ReplicaMismatch(RuntimeError):
    """The ranks' parameters are not bit-identical."""


def parameter_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter's bytes: equal digests mean bit-identical replicas."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_replicas(model: nn.Module, step: int) -> str:
    """All-gather the digests; raise :class:`ReplicaMismatch` on every rank when they differ."""
    mine = parameter_digest(model)
    device = next(model.parameters()).device
    raw = torch.tensor(list(bytes.fromhex(mine)), dtype=torch.uint8, device=device)  # (32,)
    rows = [torch.empty_like(raw) for _ in range(dist.get_world_size())]
    dist.all_gather(rows, raw)  # bytes, not pickled objects
    digests = [bytes(r.cpu().tolist()).hex() for r in rows]
    if len(set(digests)) > 1:
        raise ReplicaMismatch(
            f"parameters differ between ranks after step {step}: digests by rank "
            + ", ".join(f"{r}:{str(d)[:12]}" for r, d in enumerate(digests))
        )
    return mine


def broadcast_buffers_(model: nn.Module) -> None:
    """Overwrite every buffer (BatchNorm statistics, ...) with rank 0's; changes buffers only."""
    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)
