"""Calibrate the alpha-beta model on the links it will predict (docs/algorithms.md, cost model).

A message of n bytes between two nodes costs t(n) = alpha + n * beta seconds. Ranks 0 and 1
measure it by ping-pong over torch.distributed point-to-point (the same gloo transport the
collectives use):

    for n in sizes (8 B ... 64 MiB), repeats times:
        rank 0: send n bytes, receive n bytes back     (1) one round trip = 2 t(n)
        rank 1: receive, send back
    t(n) = median round trip / 2                        (2) the median resists a scheduler hiccup
    (alpha, beta) = least squares of t(n) on n          (3) weighted by 1/t(n)^2, so the small
                                                            messages fix alpha and the large
                                                            ones beta (relative error)

Ranks other than 0 and 1 wait at the closing barrier. The fit is refused when it is not
physical (beta <= 0), which means the sizes did not reach the shaped regime.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["DEFAULT_SIZES", "AlphaBeta", "fit_alpha_beta", "pingpong_seconds", "sizes_for"]

DEFAULT_SIZES = (*(8 * 8**i for i in range(8)), 64 * 2**20)  # 8 B ... 16 MiB, 64 MiB
LONGEST_MESSAGE_S = 0.5  # at a slow rate, stop the sizes where one message takes this long


def sizes_for(bytes_per_s: float) -> tuple[int, ...]:
    """DEFAULT_SIZES up to the last one a link of this rate carries in LONGEST_MESSAGE_S."""
    if not bytes_per_s > 0:
        raise ValueError(f"bytes_per_s must be > 0; got {bytes_per_s}")
    kept = tuple(n for n in DEFAULT_SIZES if n <= bytes_per_s * LONGEST_MESSAGE_S)
    return kept if len(kept) >= 3 else DEFAULT_SIZES[:3]


@dataclass(frozen=True)
class AlphaBeta:
    """t(n) = alpha + n * beta: latency in seconds and seconds per byte."""

    alpha: float
    beta: float

    def seconds(self, nbytes: float) -> float:
        return self.alpha + nbytes * self.beta

    @property
    def gbit_per_s(self) -> float:
        return 8 / self.beta / 1e9


def pingpong_seconds(
    rank: int, sizes: tuple[int, ...] = DEFAULT_SIZES, repeats: int = 5
) -> list[float]:
    """One-way seconds t(n) per size, measured by ranks 0 and 1 (others get ``[]``)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    result: list[float] = []
    if rank in (0, 1):
        peer = 1 - rank
        for n in sizes:
            buf = torch.empty(max(1, n // 4), dtype=torch.float32)  # n bytes (4-byte items)
            trips = []
            for _ in range(repeats + 1):  # the first round warms the connection, not kept
                t0 = time.perf_counter()
                if rank == 0:  # (1)
                    dist.send(buf, peer)
                    dist.recv(buf, peer)
                else:
                    dist.recv(buf, peer)
                    dist.send(buf, peer)
                trips.append(time.perf_counter() - t0)
            result.append(statistics.median(trips[1:]) / 2)  # (2)
    dist.barrier()
    return result


def fit_alpha_beta(sizes: tuple[int, ...], seconds: list[float]) -> AlphaBeta:
    """Weighted least squares of seconds on sizes (3)."""
    if len(sizes) != len(seconds) or len(sizes) < 2:
        raise ValueError(
            f"need at least two (size, seconds) pairs of equal length; got {len(sizes)} sizes "
            f"and {len(seconds)} times"
        )
    n = np.asarray([max(1, s // 4) * 4 for s in sizes], dtype=np.float64)
    t = np.asarray(seconds, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"times must be finite and > 0; got {seconds}")
    w = 1.0 / t
    design = np.stack([np.ones_like(n), n], axis=1) * w[:, None]
    (alpha, beta), *_ = np.linalg.lstsq(design, t * w, rcond=None)
    if beta <= 0:
        raise ValueError(
            f"fitted beta {beta:.3e} s/B is not positive: the largest message ({int(n.max())} B) "
            "did not reach the link's rate; calibrate with larger sizes"
        )
    return AlphaBeta(alpha=max(0.0, float(alpha)), beta=float(beta))
