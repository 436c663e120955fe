"""Time the selection step: torch.topk against sparsgd's topk, sampled and randomk compressors.

For a Gaussian vector x of ``numel`` entries (fixed seed) and k = max(1, floor(density numel)):

    torch.topk   torch.topk(x.abs(), k)               the baseline (exact, no tie rule)
    topk         make_compressor("topk").compress      exact top-k, ties to the lower index
    sampled      make_compressor("sampled")             DGC-style approximate top-k
    randomk      make_compressor("randomk")             k uniform random coordinates

Each compressor call includes building the message (int32 indices, float32 values). Every
method runs once untimed, then ``repeats`` timed runs; the table gives the median, the achieved
density and the speed-up median(torch.topk) / median(method), all measured in this one run.
``threads`` sets torch's intra-op threads (default 1, what the project's launchers give each
worker process). torch.topk on a 1-D tensor uses one thread whatever the setting; the fast
selections run a few dozen smaller operations, and with 2 threads on a machine whose cores are
also busy with other processes each of them can wait for a descheduled thread, so their times
then depend mostly on the other load (see docs/compression.md).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from sparsgd.compress.checks import k_from_density
from sparsgd.compress.registry import make_compressor

__all__ = ["METHODS", "measure_selection"]

METHODS = ("torch.topk", "topk", "sampled", "randomk")


def _time(fn: Callable[[], float], repeats: int) -> tuple[float, float]:
    """(median milliseconds, achieved density) of ``fn`` over ``repeats`` timed runs."""
    achieved = fn()  # untimed warm-up
    times_ms = []
    for _ in range(repeats):
        start = time.perf_counter()
        achieved = fn()
        times_ms.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times_ms), achieved


def _methods(x: torch.Tensor, density: float, seed: int) -> dict[str, Callable[[], float]]:
    """Name -> a call that selects from ``x`` and returns the achieved density."""
    k = k_from_density(density, x.numel())
    topk = make_compressor("topk")
    sampled = make_compressor("sampled", seed=seed)
    randomk = make_compressor("randomk", seed=seed)
    return {
        "torch.topk": lambda: torch.topk(x.abs(), k).indices.numel() / x.numel(),
        "topk": lambda: topk.compress(x, density).density,
        "sampled": lambda: sampled.compress(x, density).density,
        "randomk": lambda: randomk.compress(x, density).density,
    }


def measure_selection(
    numel: int, density: float, repeats: int, seed: int, threads: int = 1
) -> list[dict[str, Any]]:
    """One row per method: median ms, achieved density, speed-up over torch.topk.

    Sets torch's intra-op threads to ``threads`` while measuring and restores them after.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(numel, generator=generator)  # (numel,) float32
        rows: list[dict[str, Any]] = []
        for name, fn in _methods(x, density, seed).items():
            median_ms, achieved = _time(fn, repeats)
            rows.append({"method": name, "median_ms": median_ms, "achieved_density": achieved})
    finally:
        torch.set_num_threads(previous)  # leave the process as it was (tests call this in-process)
    baseline = rows[0]["median_ms"]
    for row in rows:
        row["speedup_vs_torch_topk"] = baseline / row["median_ms"]
    return rows
