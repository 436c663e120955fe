"""Name -> collective: the explicit table behind :func:`make_collective`.

dense           all_reduce of the whole tensor                   2 (P-1)/P * 4d bytes
topk_allgather  all-gather of every rank's top-k set, summed     (P-1) * 8k bytes
gtopk           tree reduce + broadcast of k global entries      2 ceil(log2 P) * 8k bytes
gtopk_exact     gtopk's index set, then all_reduce of k values   tree + 2 (P-1)/P * 4k bytes
"""

from __future__ import annotations

from collections.abc import Callable

import torch.distributed as dist

from sparsgd.comm.base import Collective
from sparsgd.comm.dense import DenseAllreduce
from sparsgd.comm.gtopk import GTopk
from sparsgd.comm.gtopk_exact import GTopkExact
from sparsgd.comm.topk_allgather import TopkAllgather
from sparsgd.compress.base import Compressor

__all__ = ["COLLECTIVES", "make_collective"]

COLLECTIVES: dict[str, Callable[[dist.ProcessGroup | None, Compressor | None], Collective]] = {
    "dense": DenseAllreduce,
    "topk_allgather": TopkAllgather,
    "gtopk": GTopk,
    "gtopk_exact": GTopkExact,
}


def make_collective(
    name: str, group: dist.ProcessGroup | None = None, compressor: Compressor | None = None
) -> Collective:
    """The collective ``name`` on ``group`` (default: the whole default process group).

    Needs an initialised process group; ``compressor`` is used by ``topk_allgather`` (default
    exact top-k), and refused by the others unless it names their own selection.
    """
    if name not in COLLECTIVES:
        raise ValueError(f"unknown collective {name!r}; valid names: {sorted(COLLECTIVES)}")
    return COLLECTIVES[name](group, compressor)
