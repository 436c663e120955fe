"""The alpha-beta cost of one aggregation, per collective (docs/algorithms.md section 5).

A message of n bytes costs alpha + n * beta seconds. For P workers, d parameters, k entries
kept (k = max(1, floor(rho d))), 4-byte dense values and s = 8 bytes per sparse entry
(int32 index + float32 value):

    dense ring allreduce     t = 2 (P-1) alpha + 2 (P-1)/P * 4d * beta
    Top-k via allgather      t = ceil(log2 P) alpha + (P-1) * k s * beta
    gTop-k tree              t = 2 ceil(log2 P) (alpha + k s beta)     (reduce, then broadcast)

and the scaling efficiency of S-SGD on P workers, when one iteration is the computation
t_comp followed by the aggregation (no overlap, selection cost left out):

    e(P) = t_comp / (t_comp + t_agg(P))     (throughput of P workers / (P x one worker))

These are models, not measurements; :mod:`sparsgd.experiments.comm_scaling` and the network
lab (:mod:`sparsgd.bench.lab_comm`) set them beside what the real collectives cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sparsgd.compress.checks import k_from_density
from sparsgd.sim.network_clock import NetworkModel

__all__ = [
    "DENSE_ITEM_BYTES",
    "MODELLED",
    "SPARSE_ENTRY_BYTES",
    "aggregation_seconds",
    "efficiency",
    "tree_rounds",
]

DENSE_ITEM_BYTES = 4  # float32
SPARSE_ENTRY_BYTES = 8  # int32 index + float32 value


def tree_rounds(workers: int) -> int:
    """ceil(log2 P): rounds of a binary tree or of recursive doubling over P workers."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}")
    return math.ceil(math.log2(workers)) if workers > 1 else 0


def _dense(p: int, d: int, k: int, net: NetworkModel) -> float:
    if p == 1:
        return 0.0
    return 2 * (p - 1) * net.alpha + 2 * (p - 1) / p * d * DENSE_ITEM_BYTES * net.beta


def _topk(p: int, d: int, k: int, net: NetworkModel) -> float:
    return tree_rounds(p) * net.alpha + (p - 1) * k * SPARSE_ENTRY_BYTES * net.beta


def _gtopk(p: int, d: int, k: int, net: NetworkModel) -> float:
    return 2 * tree_rounds(p) * (net.alpha + k * SPARSE_ENTRY_BYTES * net.beta)


# collective name (as in sparsgd.comm) -> t(P, d, k, network)
MODELLED: dict[str, Callable[[int, int, int, NetworkModel], float]] = {
    "dense": _dense,
    "topk_allgather": _topk,
    "gtopk": _gtopk,
}


def aggregation_seconds(
    name: str, workers: int, numel: int, density: float, net: NetworkModel
) -> float:
    """Modelled seconds of one aggregation by collective ``name``."""
    if name not in MODELLED:
        raise ValueError(f"no cost model for {name!r}; modelled: {sorted(MODELLED)}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}")
    return MODELLED[name](workers, numel, k_from_density(density, numel), net)


def efficiency(compute_s: float, aggregation_s: float) -> float:
    """e = t_comp / (t_comp + t_agg), in (0, 1]."""
    if compute_s <= 0:
        raise ValueError(f"compute_s must be > 0; got {compute_s}")
    return compute_s / (compute_s + aggregation_s)
