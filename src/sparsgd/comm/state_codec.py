"""A nested state (a config, a checkpoint part, a worker's state) as one uint8 tensor that holds
JSON and raw tensor bytes: what crosses between processes instead of a pickle, so that
decoding builds only plain data and tensors and nothing received can make a process run code.

    encode(obj):
        (1) walk obj: None, bool, int, float, str stay JSON values; a list is a JSON list; a
            tuple is {"tuple": [...]}; a dict is {"dict": [[key, value], ...]} (keys keep
            their type: an optimizer's state is keyed by int); a tensor is
            {"tensor": [dtype, shape, offset, nbytes]} and its bytes go to a blob;
            anything else is a TypeError naming where it was found;
        (2) frame = [JSON length L as 8 little-endian bytes][L bytes of JSON][blob]
    decode(frame): the inverse; tensors are fresh CPU copies with the saved dtype and shape.

Used by the synchronous collectives of states (:mod:`sparsgd.sync.state_wire`) and by the
parameter server's STATE frames (:mod:`sparsgd.comm.ps_transport`).
"""

from __future__ import annotations

import json
from typing import Any

import torch

__all__ = ["LENGTH_BYTES", "decode", "encode"]

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
