"""The alpha-beta cost model of the three aggregations (docs/algorithms.md section 5)."""

from __future__ import annotations

import pytest

from sparsgd.bench.cost_model import (
    DENSE_ITEM_BYTES,
    SPARSE_ENTRY_BYTES,
    aggregation_seconds,
    efficiency,
    tree_rounds,
)
from sparsgd.sim.network_clock import NetworkModel, parse_network

ONE_GBE = parse_network("1gbe")
D, RHO = 1_000_000, 0.001  # k = 1000
K = 1000


def test_tree_rounds_is_ceil_log2():
    assert [tree_rounds(p) for p in (1, 2, 3, 4, 5, 8, 9, 1024)] == [0, 1, 2, 2, 3, 3, 4, 10]
    with pytest.raises(ValueError, match="workers must be >= 1"):
        tree_rounds(0)


def test_formulas_with_unit_costs():
    latency = NetworkModel(alpha=1.0, beta=0.0)
    bandwidth = NetworkModel(alpha=0.0, beta=1.0)
    p = 8
    assert aggregation_seconds("dense", p, D, RHO, latency) == 2 * (p - 1)
    assert aggregation_seconds("topk_allgather", p, D, RHO, latency) == 3
    assert aggregation_seconds("gtopk", p, D, RHO, latency) == 2 * 3
    assert aggregation_seconds("dense", p, D, RHO, bandwidth) == pytest.approx(
        2 * (p - 1) / p * D * DENSE_ITEM_BYTES
    )
    assert aggregation_seconds("topk_allgather", p, D, RHO, bandwidth) == (p - 1) * K * 8
    assert aggregation_seconds("gtopk", p, D, RHO, bandwidth) == 2 * 3 * K * SPARSE_ENTRY_BYTES


def test_one_worker_communicates_nothing():
    for name in ("dense", "topk_allgather", "gtopk"):
        assert aggregation_seconds(name, 1, D, RHO, ONE_GBE) == 0.0


def test_at_scale_gtopk_beats_topk_beats_dense_on_1gbe():
    t = {
        n: aggregation_seconds(n, 1024, D, RHO, ONE_GBE)
        for n in ("dense", "topk_allgather", "gtopk")
    }
    assert t["gtopk"] < t["topk_allgather"] < t["dense"]


def test_on_two_workers_the_tree_pays_twice_the_latency():
    # reduce + broadcast: two messages where the allgather needs one; a property of the model
    latency = NetworkModel(alpha=1.0, beta=0.0)
    assert aggregation_seconds("gtopk", 2, D, RHO, latency) == 2 * aggregation_seconds(
        "topk_allgather", 2, D, RHO, latency
    )


def test_efficiency_and_bad_input():
    assert efficiency(1.0, 0.0) == 1.0
    assert efficiency(1.0, 3.0) == 0.25
    with pytest.raises(ValueError, match="compute_s must be > 0"):
        efficiency(0.0, 1.0)
    with pytest.raises(ValueError, match="no cost model for 'gtopk_exact'"):
        aggregation_seconds("gtopk_exact", 4, D, RHO, ONE_GBE)
