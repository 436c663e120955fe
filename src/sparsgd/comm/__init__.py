"""sparsgd.comm: sparse and dense collectives on a torch.distributed process group.

    coll = make_collective("gtopk")          # or dense | topk_allgather | gtopk_exact
    red = coll.reduce(p, density)            # p = e + g on this rank, (d,)
    x -= lr * red.total / P;  e = red.residual;  red.stats.bytes_sent

One file per collective (dense.py, topk_allgather.py, gtopk.py with its gtopk_exact
variant), on three shared files: base.py (the contract and the input check that rides in the
messages), stats.py (the result and the counting of every message), wire.py (the process
group and the byte layout of a sparse set). Costs (docs/algorithms.md, cost model):

dense           all_reduce of the whole tensor                   2 (P-1)/P * 4d bytes
topk_allgather  all-gather of every rank's top-k set, summed     (P-1) * 8k bytes
gtopk           tree reduce + broadcast of k global entries      2 ceil(log2 P) * 8k bytes
gtopk_exact     gtopk's index set, then all_reduce of k values   tree + 2 (P-1)/P * 4k bytes

See docs/comm.md for the algorithms, their costs and the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.distributed as dist

from sparsgd.comm.base import Collective
from sparsgd.comm.dense import DenseAllreduce
from sparsgd.comm.gtopk import GTopk, GTopkExact
from sparsgd.comm.stats import CommStats, Reduced
from sparsgd.comm.topk_allgather import TopkAllgather
from sparsgd.compress.base import Compressor

__all__ = ["COLLECTIVES", "Collective", "CommStats", "Reduced", "make_collective"]

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
