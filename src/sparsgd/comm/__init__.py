"""sparsgd.comm: sparse and dense collectives on a torch.distributed process group.

    coll = make_collective("gtopk")          # or dense | topk_allgather | gtopk_exact
    red = coll.reduce(p, density)            # p = e + g on this rank, (d,)
    x -= lr * red.total / P;  e = red.residual;  red.stats.bytes_sent

See docs/comm.md for the algorithms, their costs and the benchmark.
"""

from sparsgd.comm.base import Collective
from sparsgd.comm.registry import COLLECTIVES, make_collective
from sparsgd.comm.stats import CommStats, Reduced

__all__ = ["COLLECTIVES", "Collective", "CommStats", "Reduced", "make_collective"]
