"""One rank's view of a ``torch.distributed`` process group, with every message counted.

A :class:`Link` knows this rank's index and the size of the group, translates group ranks to
the global ranks that point-to-point calls need, and wraps the four primitives the collectives
use. Each primitive times itself into the ``comm`` phase of the call's
:class:`~sparsgd.comm.accounting.Ledger` and counts the buffer it moved (rules in
:mod:`sparsgd.comm.accounting`). Tensors stay on their device: with NCCL they must be CUDA
tensors, with gloo CPU tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from sparsgd.comm.accounting import Ledger

__all__ = ["Link", "open_link"]


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

    def send(self, buffer: Tensor, dst: int, ledger: Ledger) -> None:
        """Blocking send of ``buffer`` to group rank ``dst``."""
        with ledger.phase("comm"):
            dist.send(buffer, dst=self.global_rank(dst), group=self.group)
        ledger.send(_nbytes(buffer))

    def send_all(self, buffer: Tensor, dsts: list[int], ledger: Ledger) -> None:
        """Send ``buffer`` to every rank of ``dsts`` at once, then wait for all of them."""
        with ledger.phase("comm"):
            works = [dist.isend(buffer, dst=self.global_rank(d), group=self.group) for d in dsts]
            for work in works:
                work.wait()
        for _ in dsts:
            ledger.send(_nbytes(buffer))

    def recv(self, nbytes: int, src: int, ledger: Ledger, device: torch.device) -> Tensor:
        """Blocking receive of an ``nbytes``-byte uint8 buffer from group rank ``src``."""
        buffer = torch.empty(nbytes, dtype=torch.uint8, device=device)
        with ledger.phase("comm"):
            dist.recv(buffer, src=self.global_rank(src), group=self.group)
        ledger.recv(nbytes)
        return buffer

    def all_gather(self, tensor: Tensor, ledger: Ledger, check: bool = False) -> list[Tensor]:
        """``[tensor of rank 0, ..., tensor of rank P-1]``; same shape and dtype on every rank."""
        out = [torch.empty_like(tensor) for _ in range(self.world)]
        with ledger.phase("comm"):
            dist.all_gather(out, tensor.contiguous(), group=self.group)
        ledger.all_gather(_nbytes(tensor), self.world, check=check)
        return out

    def all_reduce_(self, tensor: Tensor, ledger: Ledger) -> Tensor:
        """Sum ``tensor`` over the group in place (contiguous tensors only); returns it."""
        with ledger.phase("comm"):
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group)
        ledger.all_reduce(tensor.numel(), tensor.element_size(), self.world)
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


def _nbytes(tensor: Tensor) -> int:
    return tensor.numel() * tensor.element_size()
