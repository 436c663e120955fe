"""The wire format of a sparse set: one flat uint8 buffer per message.

A set of n entries over a flat tensor of d elements travels as

    buffer = bytes(indices as index_dtype(d)) ++ bytes(values)     # (n * (s_i + s_v),) uint8

with s_i = 4 (int32; 8 only when d >= 2**31, see :func:`sparsgd.compress.message.index_dtype`)
and s_v the value itemsize (4 for float32), so one entry costs 8 bytes, as in docs/algorithms.md
section 1. One buffer means one message per set, and its length is exactly the bytes counted.
Works on any device (``Tensor.view(dtype)`` reinterprets, nothing moves to the host). Pure
tensor code: never imports ``torch.distributed``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sparsgd.comm.sparse_set import Entries
from sparsgd.compress.message import index_dtype

__all__ = ["entry_nbytes", "pack", "pack_indices", "unpack", "unpack_indices"]


def entry_nbytes(numel: int, value_dtype: torch.dtype) -> int:
    """Bytes of one (index, value) entry on the wire."""
    return _index_size(numel) + _itemsize(value_dtype)


def pack(entries: Entries, numel: int) -> Tensor:
    """``(n * entry_nbytes,)`` uint8 buffer holding the indices, then the values."""
    values = entries.values.contiguous()
    return torch.cat([pack_indices(entries.indices, numel), values.view(torch.uint8)])


def unpack(buffer: Tensor, n: int, numel: int, value_dtype: torch.dtype) -> Entries:
    """The first ``n`` entries of a buffer made by :func:`pack` (padding after them ignored)."""
    split = n * _index_size(numel)
    values = buffer[split : split + n * _itemsize(value_dtype)].clone().view(value_dtype)
    return Entries(unpack_indices(buffer[:split], n, numel), values)


def pack_indices(indices: Tensor, numel: int) -> Tensor:
    """``(n * s_i,)`` uint8 buffer of the indices in the wire index dtype."""
    return indices.to(index_dtype(numel)).contiguous().view(torch.uint8)


def unpack_indices(buffer: Tensor, n: int, numel: int) -> Tensor:
    """The ``n`` int64 indices at the start of ``buffer``."""
    raw = buffer[: n * _index_size(numel)].clone()
    return raw.view(index_dtype(numel)).to(torch.int64)


def _index_size(numel: int) -> int:
    return _itemsize(index_dtype(numel))


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()
