"""Nested states (configs, checkpoint parts) between ranks as bytes, never as pickles.

torch.distributed's object collectives (``broadcast_object_list``, ``gather_object``,
``scatter_object_list``, ``all_gather_object``) pickle on one rank and unpickle on the
others: whoever can reach the rendezvous could make a rank run code. Here a state travels as
one uint8 tensor that holds JSON and raw tensor bytes, and decoding builds only plain data and
tensors (docs/training.md, failures and what happens):

    encode(obj):
        (1) walk obj: None, bool, int, float, str stay JSON values; a list is a JSON list; a
            tuple is {"tuple": [...]}; a dict is {"dict": [[key, value], ...]} (keys keep
            their type: an optimizer's state is keyed by int); a tensor is
            {"tensor": [dtype, shape, offset, nbytes]} and its bytes go to a blob;
            anything else is a TypeError naming where it was found;
        (2) frame = [JSON length L as 8 little-endian bytes][L bytes of JSON][blob]
    decode(frame): the inverse; tensors are fresh CPU copies with the saved dtype and shape.

The collectives send a length first (one int64), then the frame padded to the longest one, so
that every rank posts tensors of one size; ``device`` is the collective's device (CPU for
gloo, the rank's GPU for NCCL).
"""

from __future__ import annotations

import json
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "all_gather_state",
    "broadcast_state",
    "decode",
    "encode",
    "gather_state",
    "scatter_state",
]

LENGTH_BYTES = 8  # the JSON length at the head of a frame
_DTYPES = {str(t): t for t in (torch.float16, torch.bfloat16, torch.float32, torch.float64,
                               torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                               torch.bool)}  # fmt: skip


def _skeleton(obj: Any, blob: list[torch.Tensor], offset: list[int], where: str) -> Any:
    """Step (1): the JSON-ready skeleton of ``obj``; tensor bytes appended to ``blob``."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.Tensor):
        if str(obj.dtype) not in _DTYPES:
            raise TypeError(f"{where}: tensors of dtype {obj.dtype} cannot be sent")
        data = obj.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        blob.append(data)
        offset[0] += data.numel()
        return {"tensor": [str(obj.dtype), list(obj.shape), offset[0] - data.numel(), data.numel()]}
    if isinstance(obj, list):
        return [_skeleton(v, blob, offset, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {"tuple": [_skeleton(v, blob, offset, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"{where}: dict keys must be str or int; got {key!r}")
            items.append([key, _skeleton(value, blob, offset, f"{where}[{key!r}]")])
        return {"dict": items}
    raise TypeError(f"{where}: a {type(obj).__name__} cannot be sent between ranks")


def encode(obj: Any) -> torch.Tensor:
    """``obj`` as one uint8 frame (steps (1)-(2))."""
    blob: list[torch.Tensor] = []
    text = json.dumps(_skeleton(obj, blob, [0], "state")).encode("utf-8")
    head = torch.tensor(list(len(text).to_bytes(LENGTH_BYTES, "little")), dtype=torch.uint8)
    body = torch.frombuffer(bytearray(text), dtype=torch.uint8) if text else head[:0]
    return torch.cat([head, body, *blob])


def _build(node: Any, blob: torch.Tensor) -> Any:
    if isinstance(node, list):
        return [_build(v, blob) for v in node]
    if not isinstance(node, dict):
        return node
    if "tuple" in node:
        return tuple(_build(v, blob) for v in node["tuple"])
    if "dict" in node:
        return {key: _build(value, blob) for key, value in node["dict"]}
    dtype, shape, start, nbytes = node["tensor"]
    if dtype not in _DTYPES or start < 0 or start + nbytes > blob.numel():
        raise ValueError(f"a received tensor is out of its frame: {node['tensor']}")
    raw = blob[start : start + nbytes].clone()
    return raw.view(_DTYPES[dtype]).reshape(shape)


def decode(frame: torch.Tensor) -> Any:
    """The state :func:`encode` wrote (plain data and CPU tensors only)."""
    frame = frame.cpu()
    length = int.from_bytes(bytes(frame[:LENGTH_BYTES].tolist()), "little")
    if not 0 <= length <= frame.numel() - LENGTH_BYTES:
        raise ValueError(f"a received frame's JSON length {length} exceeds the frame")
    text = bytes(frame[LENGTH_BYTES : LENGTH_BYTES + length].numpy().tobytes())
    return _build(json.loads(text.decode("utf-8")), frame[LENGTH_BYTES + length :])


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
