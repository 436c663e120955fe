"""Calibrate the alpha-beta model on the links it will predict (docs/algorithms.md, cost model).

A message of n bytes between two nodes costs t(n) = alpha + n * beta seconds. Ranks 0 and 1
measure it by ping-pong over torch.distributed point-to-point (the same gloo transport the
collectives use):

    for n in sizes (8 B ... 64 MiB), repeats times:
        rank 0: send n bytes, receive n bytes back     (1) one round trip = 2 t(n)
        rank 1: receive, send back
    t(n) = median round trip / 2                        (2) the median resists a scheduler hiccup
    beta  = slope of t(n) over n >= 32 KiB               (3) least squares, where the rate rules
    alpha = median of t(n) - n beta over n < 32 KiB          where fixed costs rule

Ranks other than 0 and 1 wait at the closing barrier. The fit is refused when it is not
physical (beta <= 0), which means the sizes did not reach the shaped regime.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
import torch.distributed as dist

from sparsgd.sim.network_clock import NetworkModel

__all__ = ["DEFAULT_SIZES", "fit_alpha_beta", "pingpong_seconds", "sizes_for"]

DEFAULT_SIZES = (*(8 * 8**i for i in range(8)), 64 * 2**20)  # 8 B ... 16 MiB, 64 MiB
WARMUP_BYTES, WARMUP_TRIPS = 1 << 20, 20  # before timing: grow the connection's windows
BANDWIDTH_BYTES = 32 * 1024  # from here up, the rate decides a message's time (3)
LONGEST_MESSAGE_S = 0.5  # at a slow rate, stop the sizes where one message takes this long


def sizes_for(bytes_per_s: float) -> tuple[int, ...]:
    """DEFAULT_SIZES up to the last one a link of this rate carries in LONGEST_MESSAGE_S."""
    if not bytes_per_s > 0:
        raise ValueError(f"bytes_per_s must be > 0; got {bytes_per_s}")
    kept = tuple(n for n in DEFAULT_SIZES if n <= bytes_per_s * LONGEST_MESSAGE_S)
    return kept if len(kept) >= 7 else DEFAULT_SIZES[:7]  # two sizes >= BANDWIDTH_BYTES


def pingpong_seconds(
    rank: int, sizes: tuple[int, ...] = DEFAULT_SIZES, repeats: int = 5
) -> list[float]:
    """One-way seconds t(n) per size, measured by ranks 0 and 1 (others get ``[]``)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    result: list[float] = []
    if rank in (0, 1):
        peer = 1 - rank
        _round_trips(rank, peer, torch.zeros(WARMUP_BYTES // 4), WARMUP_TRIPS)  # open the path
        for n in sizes:
            buf = torch.empty(max(1, n // 4), dtype=torch.float32)  # n bytes (4-byte items)
            trips = _round_trips(rank, peer, buf, repeats + 1)  # the first one is not kept
            result.append(statistics.median(trips[1:]) / 2)  # (2)
    dist.barrier()
    return result


def _round_trips(rank: int, peer: int, buf: torch.Tensor, count: int) -> list[float]:
    """(1) ``count`` round trips of ``buf`` between ranks 0 and 1; seconds of each."""
    trips = []
    for _ in range(count):
        t0 = time.perf_counter()
        if rank == 0:
            dist.send(buf, peer)
            dist.recv(buf, peer)
        else:
            dist.recv(buf, peer)
            dist.send(buf, peer)
        trips.append(time.perf_counter() - t0)
    return trips


def fit_alpha_beta(sizes: tuple[int, ...], seconds: list[float]) -> NetworkModel:
    """(3) beta: least squares slope of t(n) over the large messages (n >= BANDWIDTH_BYTES),
    where the link's rate decides; alpha: the median of t(n) - n beta over the small ones,
    where fixed costs decide (a robust split: a tiny message can take milliseconds when the
    transport holds it back, which would tilt one weighted fit over all sizes)."""
    if len(sizes) != len(seconds) or len(sizes) < 3:
        raise ValueError(
            f"need at least three (size, seconds) pairs of equal length; got {len(sizes)} sizes "
            f"and {len(seconds)} times"
        )
    n = np.asarray([max(1, s // 4) * 4 for s in sizes], dtype=np.float64)
    t = np.asarray(seconds, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"times must be finite and > 0; got {seconds}")
    large = n >= BANDWIDTH_BYTES
    if large.sum() < 2 or (~large).sum() < 1:
        raise ValueError(
            f"sizes must include at least two of >= {BANDWIDTH_BYTES} B and one smaller; "
            f"got {list(sizes)}"
        )
    beta, _ = np.polyfit(n[large], t[large], 1)
    if beta <= 0:
        raise ValueError(
            f"fitted beta {beta:.3e} s/B is not positive: the largest message ({int(n.max())} B) "
            "did not reach the link's rate; calibrate with larger sizes"
        )
    alpha = float(np.median(t[~large] - n[~large] * beta))
    return NetworkModel(alpha=max(0.0, alpha), beta=float(beta), name="calibrated")
