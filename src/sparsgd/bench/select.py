"""Time the selection step: torch.topk against sparsgd's topk, sampled and randomk compressors.

For a Gaussian vector x of ``numel`` entries (fixed seed) and k = max(1, floor(density numel)):

    floor        x.sum()                              one read pass of x: the memory floor
    torch.topk   torch.topk(x.abs(), k)               the baseline (exact, no tie rule)
    topk         make_compressor("topk").compress      exact top-k, ties to the lower index
    topk_numpy   the same with the compiled loops off   its numpy path (SPARSGD_NO_KERNELS=1)
    sampled      make_compressor("sampled")             DGC-style approximate top-k
    randomk      make_compressor("randomk")             k uniform random coordinates

Each compressor call includes building the message (int32 indices, float32 values). Every
method runs once untimed; then each of ``repeats`` rounds times the floor and every method once,
in turn, so a change of the machine's load falls on all of them alike. A row gives the median
``ms``, the median floor ``floor_ms`` of the same rounds, ``x_floor = ms / floor_ms``, the
achieved density and ``speedup_vs_torch_topk = ms(torch.topk) / ms``, all from this one run.
``threads`` sets torch's intra-op threads (default 1, what the project's launchers give each
worker process) while measuring; torch.topk on a 1-D tensor uses one thread whatever the
setting, and the topk and sampled candidate pass runs in numpy on one thread (see
docs/compression.md).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from sparsgd.compress import kernels
from sparsgd.compress.checks import k_from_density
from sparsgd.compress.registry import make_compressor

__all__ = ["METHODS", "measure_selection"]

METHODS = ("torch.topk", "topk", "topk_numpy", "sampled", "randomk")


def _methods(x: torch.Tensor, density: float, seed: int) -> dict[str, Callable[[], float]]:
    """Name -> a call that selects from ``x`` and returns the achieved density ("floor" first)."""
    k = k_from_density(density, x.numel())
    topk, topk_numpy = make_compressor("topk"), make_compressor("topk")
    sampled = make_compressor("sampled", seed=seed)
    randomk = make_compressor("randomk", seed=seed)
    return {
        "floor": lambda: float(x.sum()) * 0.0,
        "torch.topk": lambda: torch.topk(x.abs(), k).indices.numel() / x.numel(),
        "topk": lambda: topk.compress(x, density).density,
        "topk_numpy": _without_kernels(lambda: topk_numpy.compress(x, density).density),
        "sampled": lambda: sampled.compress(x, density).density,
        "randomk": lambda: randomk.compress(x, density).density,
    }


def _without_kernels(fn: Callable[[], float]) -> Callable[[], float]:
    """``fn`` run with the compiled selection loops switched off (its numpy/torch path)."""

    def call() -> float:
        previous = kernels.set_enabled(False)
        try:
            return fn()
        finally:
            kernels.set_enabled(previous)

    return call


def _rounds(calls: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Name -> milliseconds of each round; every call once per round, in turn."""
    for fn in calls.values():
        fn()  # untimed warm-up
    times_ms: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times_ms[name].append((time.perf_counter() - start) * 1e3)
    return times_ms


def measure_selection(
    numel: int, density: float, repeats: int, seed: int, threads: int = 1
) -> list[dict[str, Any]]:
    """One row per method of METHODS: ms, floor_ms, x_floor, density, speed-up over torch.topk.

    Sets torch's intra-op threads to ``threads`` while measuring and restores them after.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(numel, generator=generator)  # (numel,) float32
        calls = _methods(x, density, seed)
        times_ms = _rounds(calls, repeats)
        achieved = {name: calls[name]() for name in METHODS}
    finally:
        torch.set_num_threads(previous)  # leave the process as it was (tests call this in-process)
    floor_ms = statistics.median(times_ms["floor"])
    baseline = statistics.median(times_ms["torch.topk"])
    rows: list[dict[str, Any]] = []
    for name in METHODS:
        ms = statistics.median(times_ms[name])
        rows.append(
            {
                "method": name,
                "ms": ms,
                "floor_ms": floor_ms,
                "x_floor": ms / floor_ms,
                "achieved_density": achieved[name],
                "speedup_vs_torch_topk": baseline / ms,
            }
        )
    return rows
