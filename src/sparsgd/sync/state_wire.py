"""Nested states (configs, checkpoint parts) between ranks as bytes, never as pickles.

torch.distributed's object collectives (``broadcast_object_list``, ``gather_object``,
``scatter_object_list``, ``all_gather_object``) pickle on one rank and unpickle on the
others: whoever can reach the rendezvous could make a rank run code. Here a state travels as
one uint8 tensor that holds JSON and raw tensor bytes (:func:`encode` / :func:`decode` of
:mod:`sparsgd.comm.state_codec`), and decoding builds only plain data and tensors
(docs/training.md, failures and what happens).

The collectives send a length first (one int64), then the frame padded to the longest one, so
that every rank posts tensors of one size; ``device`` is the collective's device (CPU for
gloo, the rank's GPU for NCCL).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from sparsgd.comm.state_codec import LENGTH_BYTES, decode, encode

__all__ = [
    "LENGTH_BYTES",
    "all_gather_state",
    "broadcast_state",
    "decode",
    "encode",
    "gather_state",
    "scatter_state",
]


def _padded(frame: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    out = torch.zeros(size, dtype=torch.uint8, device=device)
    out[: frame.numel()] = frame.to(device)
    return out


def broadcast_state(obj: Any, src: int, device: torch.device) -> Any:
    """``obj`` of rank ``src`` on every rank (the others pass anything, e.g. ``None``)."""
    frame = encode(obj) if dist.get_rank() == src else None
    size = torch.tensor([0 if frame is None else frame.numel()], device=device)
    dist.broadcast(size, src=src)
    buffer = _padded(frame, int(size), device) if frame is not None else None
    if buffer is None:
        buffer = torch.empty(int(size), dtype=torch.uint8, device=device)
    dist.broadcast(buffer, src=src)
    return obj if frame is not None else decode(buffer)


def _sizes(frame: torch.Tensor, device: torch.device) -> list[int]:
    size = torch.tensor([frame.numel()], device=device)
    sizes = [torch.empty_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return [int(s) for s in sizes]


def all_gather_state(obj: Any, device: torch.device) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    frame = encode(obj)
    sizes = _sizes(frame, device)
    buffers = [torch.empty(max(sizes), dtype=torch.uint8, device=device) for _ in sizes]
    dist.all_gather(buffers, _padded(frame, max(sizes), device))
    return [decode(b[:n]) for b, n in zip(buffers, sizes, strict=True)]


def gather_state(obj: Any, dst: int, device: torch.device) -> list[Any] | None:
    """Every rank's ``obj`` in rank order on rank ``dst``; ``None`` elsewhere."""
    frame = encode(obj)
    sizes = _sizes(frame, device)
    mine = _padded(frame, max(sizes), device)
    if dist.get_rank() != dst:
        dist.gather(mine, None, dst=dst)
        return None
    buffers = [torch.empty_like(mine) for _ in sizes]
    dist.gather(mine, buffers, dst=dst)
    return [decode(b[:n]) for b, n in zip(buffers, sizes, strict=True)]


def scatter_state(objs: list[Any] | None, src: int, device: torch.device) -> Any:
    """Rank r receives ``objs[r]`` of rank ``src`` (the others pass ``None``)."""
    world = dist.get_world_size()
    frames = [encode(o) for o in objs] if dist.get_rank() == src and objs is not None else None
    if dist.get_rank() == src and (frames is None or len(frames) != world):
        raise ValueError(f"scatter_state needs one state per rank ({world}) on rank {src}")
    sizes = torch.tensor([f.numel() for f in frames] if frames else [0] * world, device=device)
    dist.broadcast(sizes, src=src)
    longest = int(sizes.max())
    mine = torch.empty(longest, dtype=torch.uint8, device=device)
    chunks = [_padded(f, longest, device) for f in frames] if frames else None
    dist.scatter(mine, chunks, src=src)
    return decode(mine[: int(sizes[dist.get_rank()])])
