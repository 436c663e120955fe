"""Input checks shared by every compressor: each error names the parameter, the value, the reason.

Non-finite policy (documented in docs/compression.md): a gradient holding NaN or Inf is
refused *before* it reaches a residual. :func:`check_finite` raises :class:`NonFiniteError`;
the training loops catch it, skip the step (residuals and parameters untouched) and count it
in ``skipped_nonfinite_steps``. Nothing non-finite is ever folded into a residual.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "NonFiniteError",
    "check_density",
    "check_finite",
    "check_flat",
    "check_k",
    "check_same_shape",
    "k_from_density",
]


class NonFiniteError(FloatingPointError):
    """A tensor that must be finite holds NaN or Inf."""


def check_density(density: float, name: str = "density") -> float:
    """``density`` must be a finite number in (0, 1]."""
    if isinstance(density, bool) or not isinstance(density, (int, float)):
        raise TypeError(f"{name} must be a number in (0, 1]; got {density!r}")
    if not math.isfinite(density) or not 0.0 < density <= 1.0:
        raise ValueError(f"{name} must be in (0, 1]; got {density}")
    return float(density)


def k_from_density(density: float, numel: int) -> int:
    """``k = max(1, floor(density * numel))`` (ALGORITHMS.md notation)."""
    check_density(density)
    if numel < 1:
        raise ValueError(f"numel must be >= 1; got {numel}")
    return max(1, math.floor(density * numel))


def check_k(k: int, numel: int, name: str = "k") -> int:
    """``k`` must be an integer in [1, numel]."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"{name} must be an integer in [1, numel={numel}]; got {k!r}")
    if not 1 <= k <= numel:
        raise ValueError(f"{name} must be in [1, numel={numel}]; got {k}")
    return k


def check_flat(x: Tensor, name: str = "x") -> Tensor:
    """``x`` must be a non-empty 1-D floating-point tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if x.dim() != 1:
        raise ValueError(
            f"{name} must be flat (1-D); got shape {tuple(x.shape)} - flatten it first"
        )
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty; got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got {x.dtype}")
    return x


def check_same_shape(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape; "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_finite(x: Tensor, name: str = "gradient") -> Tensor:
    """Raise :class:`NonFiniteError` naming ``name`` and the count of NaN/Inf entries."""
    if not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise NonFiniteError(
            f"{name} must be finite; got {n_nan} NaN and {n_inf} Inf of {x.numel()} entries"
        )
    return x
