"""Summaries over seeds and along curves: mean with its spread, first time a target is met.

Over the values v_1..v_n of n seeds:

    mean = (1/n) sum v_i        std = sqrt((1/(n-1)) sum (v_i - mean)^2)   (0 when n = 1)
    text = "0.912 ± 0.004 (n=3)"      the spread shown in tables is that std

Curves of different seeds are averaged point by point over the x values all of them share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["Curve", "first_reaching", "mean_curve", "mean_std", "spread_text"]

Curve = tuple[list[float], list[float]]  # (x values, y values)


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the finite values (None when there are none)."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return None, None
    mean = sum(kept) / len(kept)
    if len(kept) == 1:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in kept) / (len(kept) - 1)
    return mean, math.sqrt(var)


def spread_text(values: Sequence[float | None], digits: int = 3) -> str:
    """``"0.912 ± 0.004 (n=3)"``; one value prints alone; no finite value prints ``"n/a"``."""
    mean, std = mean_std(values)
    if mean is None or std is None:
        return "n/a"
    n = sum(1 for v in values if v is not None and math.isfinite(v))
    if n == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={n})"


def mean_curve(curves: Sequence[Curve]) -> tuple[list[float], list[float], list[float]]:
    """(x, mean y, std y) over the x values every curve has, in increasing x."""
    if not curves:
        return [], [], []
    shared = set(curves[0][0])
    for xs, _ in curves[1:]:
        shared &= set(xs)
    xs_out, means, stds = [], [], []
    for x in sorted(shared):
        ys = [ys[xs.index(x)] for xs, ys in curves]
        mean, std = mean_std(ys)
        if mean is None or std is None:
            continue
        xs_out.append(x)
        means.append(mean)
        stds.append(std)
    return xs_out, means, stds


def first_reaching(curve: Curve, target: float) -> float | None:
    """The first x whose y is >= ``target`` (None if the curve never gets there)."""
    for x, y in zip(*curve, strict=True):
        if y is not None and y >= target:
            return x
    return None
