"""The wire: one rank's counted view of a process group, and the byte layout of a sparse set.

A sparse set of n entries over a flat tensor of d elements travels as one uint8 buffer

    buffer = [status int64] ++ bytes(indices as index_dtype(d)) ++ bytes(values)
             8 bytes (optional)  n * s_i                          n * s_v

with s_i = 4 (int32; 8 only when d >= 2**31, see :func:`sparsgd.compress.message.index_dtype`)
and s_v the value itemsize, so one entry costs 8 bytes for float32 as in docs/algorithms.md
(notation). The status header is how the input-agreement check rides in the gTop-k tree
messages (:mod:`sparsgd.comm.base`); the all-gathered sets of ``topk_allgather`` carry their
status in a length header instead and have none. One buffer means one message per set, and
its length is exactly the bytes counted. The buffer is reused: :func:`pack_` writes into it,
:func:`unpack` copies the n entries out (k-sized tensors, never d-sized).

A :class:`Link` knows this rank's index and the size of the group, translates group ranks to
the global ranks point-to-point calls need, and wraps the primitives the collectives use;
each one times itself into the ``comm`` phase of the call's
:class:`~sparsgd.comm.stats.Ledger` and counts the buffer it moved. Tensors stay on their
device: CUDA tensors with NCCL, CPU tensors with gloo.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from sparsgd.comm.stats import Ledger
from sparsgd.compress.message import SparseMessage, index_dtype

__all__ = ["HEADER_NBYTES", "Link", "entry_nbytes", "open_link", "pack_", "unpack"]

HEADER_NBYTES = 8  # one int64 status in front of a tree message


def entry_nbytes(numel: int, value_dtype: torch.dtype | None) -> int:
    """Bytes of one entry on the wire: index and value (index only if ``value_dtype`` None)."""
    value = 0 if value_dtype is None else _itemsize(value_dtype)
    return _itemsize(index_dtype(numel)) + value


def pack_(
    buffer: Tensor, msg: SparseMessage, status: int | None = None, values: bool = True
) -> Tensor:
    """Write ``[status] ++ indices [++ values]`` of ``msg`` at the start of ``buffer`` (uint8).

    Returns the written prefix (a view of ``buffer``); the rest of ``buffer`` is left as is.
    """
    at = 0
    if status is not None:
        buffer[:HEADER_NBYTES].copy_(_as_bytes(torch.tensor([status], dtype=torch.int64)))
        at = HEADER_NBYTES
    parts = [msg.indices.to(index_dtype(msg.numel))] + ([msg.values] if values else [])
    for part in parts:
        raw = _as_bytes(part)
        buffer[at : at + raw.numel()].copy_(raw)
        at += raw.numel()
    return buffer[:at]


def unpack(
    buffer: Tensor, n: int, numel: int, value_dtype: torch.dtype | None, status: bool = False
) -> tuple[int, SparseMessage]:
    """``(status, set)`` from a buffer made by :func:`pack_`; ``status`` 0 when it has none.

    With ``value_dtype`` None only indices were packed; the set's values are then zeros of
    float32 (a set of positions). Indices come back as int64; bytes after the set are ignored.
    """
    head, at = 0, 0
    if status:
        head, at = int(buffer[:HEADER_NBYTES].clone().view(torch.int64)[0]), HEADER_NBYTES
    split = at + n * _itemsize(index_dtype(numel))
    indices = buffer[at:split].clone().view(index_dtype(numel)).to(torch.int64)
    if value_dtype is None:
        values = torch.zeros(n, dtype=torch.float32, device=buffer.device)
    else:
        values = buffer[split : split + n * _itemsize(value_dtype)].clone().view(value_dtype)
    return head, SparseMessage(indices, values, numel)


@dataclass(frozen=True)
class Link:
    """This rank inside ``group`` (``None``: the default group)."""

    group: dist.ProcessGroup | None
    rank: int
    world: int
    device: torch.device  # where small control tensors live: CUDA for NCCL, else CPU

    def global_rank(self, group_rank: int) -> int:
        if self.group is None:
            return group_rank
        return dist.get_global_rank(self.group, group_rank)

    def send_all(self, buffer: Tensor, dsts: list[int], ledger: Ledger, check: int = 0) -> None:
        """Send ``buffer`` to every group rank of ``dsts`` at once, then wait for all of them."""
        with ledger.phase("comm"):
            works = [dist.isend(buffer, dst=self.global_rank(d), group=self.group) for d in dsts]
            for work in works:
                work.wait()
        for _ in dsts:
            ledger.send(buffer.numel(), check)

    def recv_into(self, buffer: Tensor, src: int, ledger: Ledger, check: int = 0) -> Tensor:
        """Blocking receive into the uint8 ``buffer`` from group rank ``src``; returns it."""
        with ledger.phase("comm"):
            dist.recv(buffer, src=self.global_rank(src), group=self.group)
        ledger.recv(buffer.numel(), check)
        return buffer

    def all_gather(self, tensor: Tensor, ledger: Ledger, check: bool = False) -> list[Tensor]:
        """``[tensor of rank 0, ..., tensor of rank P-1]``; same shape and dtype on every rank."""
        out = [torch.empty_like(tensor) for _ in range(self.world)]
        with ledger.phase("comm"):
            dist.all_gather(out, tensor.contiguous(), group=self.group)
        ledger.all_gather(_nbytes(tensor), self.world, check=check)
        return out

    def all_reduce_(self, tensor: Tensor, ledger: Ledger, check_numel: int = 0) -> Tensor:
        """Sum the contiguous ``tensor`` over the group in place (its last ``check_numel``
        elements a status); returns it."""
        with ledger.phase("comm"):
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group)
        ledger.all_reduce(tensor.numel(), tensor.element_size(), self.world, check_numel)
        return tensor


def open_link(group: dist.ProcessGroup | None, who: str) -> Link:
    """The :class:`Link` of this process in ``group``; a clear error if there is none."""
    if not dist.is_available():
        raise RuntimeError(f"{who} needs torch.distributed, which this torch build lacks")
    if not dist.is_initialized():
        raise RuntimeError(
            f"{who} needs an initialised torch.distributed process group; call "
            "torch.distributed.init_process_group(...) first (or use "
            "sparsgd.sim.collectives.simulate to run P ranks in one process)"
        )
    rank = dist.get_rank(group)
    if rank < 0:
        raise ValueError(f"{who}: this process (global rank {dist.get_rank()}) is not in group")
    backend = str(dist.get_backend(group)).lower()
    if "nccl" in backend:
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = torch.device("cpu")
    return Link(group, rank, dist.get_world_size(group), device)


def _as_bytes(tensor: Tensor) -> Tensor:
    if tensor.numel() == 0:  # an empty tensor may carry any strides; view() refuses stride 0
        return torch.empty(0, dtype=torch.uint8, device=tensor.device)
    return tensor.contiguous().view(torch.uint8)


def _nbytes(tensor: Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()
