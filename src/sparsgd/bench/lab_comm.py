"""``sparsgd bench comm --lab RATE``: the collectives timed over shaped links, beside the model.

On an emulated cluster of P nodes (:mod:`sparsgd.lab.cluster`, every link at RATE):

(1) calibrate: ranks 0 and 1 ping-pong messages of 8 B up to 64 MiB (fewer at slow rates) and
    fit t(n) = alpha + n beta (:mod:`sparsgd.lab.calibrate`): the network the model will use
    is the one just measured, not an assumed one;
(2) time every collective exactly as ``sparsgd bench comm`` does (same worker, same rows:
    select / comm / apply split, bytes, messages), plus ``plain_ms``: a bare gloo collective
    of the same bytes (all_reduce of d floats beside dense, all_gather of k entries of 8 B
    beside topk_allgather);
(3) beside each row, ``model_ms``: the alpha-beta cost of that collective (docs/algorithms.md,
    cost model; :mod:`sparsgd.bench.cost_model`) with the calibrated alpha and beta.

The lab is torn down before the rows come back.
"""

from __future__ import annotations

import math
from typing import Any

from sparsgd.bench.comm import bench_worker, summarise
from sparsgd.bench.cost_model import MODELLED, aggregation_seconds
from sparsgd.comm.launch import WorkerContext, launch
from sparsgd.lab.calibrate import fit_alpha_beta, pingpong_seconds, sizes_for
from sparsgd.lab.cluster import Cluster, Rate
from sparsgd.lab.placement import lab_options
from sparsgd.sim.network_clock import NetworkModel

__all__ = ["CALIBRATION_REPEATS", "measure_on_lab"]

CALIBRATION_REPEATS = 5  # round trips per size; the median is kept


def calibrate_worker(ctx: WorkerContext, sizes: tuple[int, ...], repeats: int) -> list[float]:
    return pingpong_seconds(ctx.rank, sizes, repeats)


def measure_on_lab(
    workers: int,
    rate: Rate,
    numel: int,
    density: float,
    repeats: int,
    seed: int,
    *,
    timeout_s: float = 600.0,
    threads: int = 1,
) -> tuple[NetworkModel, list[dict[str, Any]]]:
    """The calibrated network and one row per collective (``sparsgd bench comm`` rows plus
    ``model_ms``), measured on a lab of ``workers`` nodes at ``rate``."""
    if workers < 2:
        raise ValueError(f"workers must be >= 2 on the lab (links join nodes); got {workers}")
    with Cluster(workers, rate) as cluster:
        options = lab_options(cluster, timeout_s, threads)
        sizes = sizes_for(rate.bytes_per_s)
        times = launch(calibrate_worker, workers, (sizes, CALIBRATION_REPEATS), options)[0]  # (1)
        net = fit_alpha_beta(sizes, times)
        per_rank = launch(bench_worker, workers, (numel, density, repeats, seed), options)  # (2)
    rows = summarise(per_rank)
    for row in rows:  # (3)
        name = str(row["collective"])
        modelled = name in MODELLED
        seconds = aggregation_seconds(name, workers, numel, density, net) if modelled else math.nan
        row["model_ms"] = seconds * 1e3
        row["rate_bits_per_s"] = rate.bits_per_s
    return net, rows
