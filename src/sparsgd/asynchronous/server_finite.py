"""Whether the server's x after a step is finite, proved without reading x when possible.

A step that overflows x must be refused (:mod:`sparsgd.asynchronous.server_state`, step
(5)). Two proofs, the first free:

    B_0     = max_i |x0_i|                                    (one read, at the start)
    B_{t+1} = (B_t + |eta| L) (1 + 4 eps)   when x <- x - eta c and L = max_i |c_i|   # (1)
    B_{t+1} < max / 2  =>  every entry of x_{t+1} is finite                           # (2)
    otherwise: a finite sum of x_{t+1} proves it (one read), else the element-wise test  # (3)

(1) holds for every entry whatever the rounding, by induction: exactly,
|x_i - eta c_i| <= B_t + |eta| L; in floats, c and eta are converted to x's dtype, then
multiplied and added (a fused multiply-add rounds less), four roundings of relative error
u = eps / 2 at most (subnormals aside, far from overflow), so the computed entry is at most
(B_t + |eta| L)(1 + u)^4, below (B_t + |eta| L)(1 + 4 eps); (2) keeps a factor of two below
the largest finite value. |eta| and L must themselves be below max / 2, so that each reaches
x's dtype finite (a float64 push of 1e39 becomes Inf in float32). L is the push check's
largest |c_i| (read anyway). The bound follows only steps of this form (no server momentum,
a policy whose direction is c itself): after any other step it is lost and (3) decides from
then on, until a checkpoint is loaded (B_0 again). A NaN in x0 or c makes B or L NaN, and
NaN < max / 2 is false: (3) decides.

L need only be at least max |c_i|, and the push check gets one from a dot product, about
half the time of the ``aminmax`` it replaces on a dense push:

    L = sqrt(fl(c . c)) (1 + 4 eps) + 2 sqrt(tiny)  >=  max_i |c_i|                    # (4)

fl(c . c) is a float sum of float squares, all >= 0, in any order, fused or not; each
rounding is monotone, so the sum is at least fl(c_j^2) for the largest |c_j|, which is at
least c_j^2 (1 - u) when c_j^2 is normal; the factor covers that and the square root; the
term 2 sqrt(tiny) covers a c_j whose square underflows (to a subnormal or, with denormals
flushed, to zero). A NaN or Inf in c, or a square that overflows, makes L NaN or Inf: then
``aminmax`` decides, as it does for any L above max_push (that refusal is per entry).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["StepBound", "all_finite", "max_abs_bound"]


def all_finite(x: Tensor) -> bool:
    """(3) No NaN/Inf in ``x``: a finite sum proves it in one read."""
    return math.isfinite(float(x.sum())) or bool(torch.isfinite(x).all())


class StepBound:
    """B of (1) for one x, or None once a step it cannot follow has been taken."""

    def __init__(self, x: Tensor) -> None:
        info = torch.finfo(x.dtype)
        self.limit, self.grow = info.max / 2, 1.0 + 4 * info.eps
        self.value: float | None = max_abs(x)  # B_0

    def after(self, rate: float, largest: float) -> float | None:
        """B of x - rate c for ``largest`` = max |c_i|, if (2) then proves it finite."""
        if self.value is None or not (abs(rate) < self.limit and largest < self.limit):
            return None
        bound = (self.value + abs(rate) * largest) * self.grow  # (1)
        return bound if bound < self.limit else None  # (2); NaN compares False


def max_abs(x: Tensor) -> float:
    """``max_i |x_i|`` in one read (0 for an empty x; NaN if x holds one)."""
    if x.numel() == 0:
        return 0.0
    lo, hi = (float(v) for v in torch.aminmax(x))
    return max(-lo, hi) if not (math.isnan(lo) or math.isnan(hi)) else math.nan


def max_abs_bound(values: Tensor) -> float:
    """(4): at least ``max_i |values_i|`` in one dot product (float32 / float64; Inf for
    other dtypes, and NaN or Inf whenever the values are not all finite or their squares
    overflow). 0 for no values."""
    if values.numel() == 0:
        return 0.0
    if values.dtype not in (torch.float32, torch.float64):
        return math.inf
    info = torch.finfo(values.dtype)
    squares = float(torch.dot(values, values))
    return math.sqrt(squares) * (1.0 + 4 * info.eps) + 2 * math.sqrt(info.tiny)
