"""The gTop-k tree on a process group: reduce sparse sets to rank 0, broadcast back.

Schedule from :mod:`sparsgd.comm.tree`; merge rule from :mod:`sparsgd.comm.merge`. Every
message is one packed buffer (:mod:`sparsgd.comm.wire`) of exactly k entries: a local set has
k entries (k <= d) and a merge of two k-sets keeps min(k, |union|) = k. So a receiver always
knows the size to expect and no length is ever exchanged.

    # (1) for each child c of this rank, in round order: recv c's set, merge it into mine
    # (2) rank > 0: send my merged set to parent(rank) and stop; rank 0 holds the global set
    # (3) broadcast: rank > 0 receives the final buffer from its parent; every rank forwards
    #     it to its children, the largest subtree first

Per rank, messages sent + received <= 2 ceil(log2 P), with equality at rank 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sparsgd.comm.accounting import Ledger
from sparsgd.comm.link import Link
from sparsgd.comm.merge import merge
from sparsgd.comm.sparse_set import Entries
from sparsgd.comm.tree import children, parent
from sparsgd.comm.wire import entry_nbytes, pack, unpack

__all__ = ["broadcast_buffer", "reduce_to_root"]


def reduce_to_root(
    local: Entries, k: int, numel: int, link: Link, ledger: Ledger
) -> tuple[Entries | None, list[Entries]]:
    """``(global set on rank 0 else None, sets this rank dropped in its merges)``."""
    dtype, device = local.values.dtype, local.values.device
    nbytes = k * entry_nbytes(numel, dtype)
    held, dropped = local, []
    for child in children(link.rank, link.world):  # (1)
        theirs = unpack(link.recv(nbytes, child, ledger, device), k, numel, dtype)
        with ledger.phase("select"):
            held, lost = merge(held, theirs, k)
        dropped.append(lost)
    if held.indices.numel() != k:
        raise RuntimeError(f"gTop-k tree: merged set has {held.indices.numel()} entries, not {k}")
    if link.rank == 0:
        return held, dropped
    link.send(pack(held, numel), parent(link.rank), ledger)  # (2)
    return None, dropped


def broadcast_buffer(
    buffer: Tensor | None, nbytes: int, link: Link, ledger: Ledger, device: torch.device
) -> Tensor:
    """Rank 0's ``buffer`` (uint8, ``nbytes`` long) on every rank, along the tree (3)."""
    if link.rank != 0:
        buffer = link.recv(nbytes, parent(link.rank), ledger, device)
    if buffer is None or buffer.numel() != nbytes:
        raise ValueError(f"rank 0 must broadcast a buffer of {nbytes} bytes; got {buffer!r}")
    kids = children(link.rank, link.world)[::-1]  # largest subtree first
    if kids:
        link.send_all(buffer, kids, ledger)
    return buffer
