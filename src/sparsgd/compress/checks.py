"""Input checks shared by every compressor: each error names the parameter, the value, the reason.

Non-finite policy (documented in docs/compression.md): a gradient holding NaN or Inf is
refused *before* it reaches a residual. :func:`check_finite` raises :class:`NonFiniteError`;
the training loops catch it, skip the step (residuals and parameters untouched) and count it
in ``skipped_nonfinite_steps``. Nothing non-finite is ever folded into a residual.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "NonFiniteError",
    "check_density",
    "check_finite",
    "check_flat",
    "check_indices",
    "check_k",
    "check_numel",
    "check_positive_int",
    "check_same_shape",
    "check_seed",
    "check_settings",
    "check_state_keys",
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
    """``k = max(1, floor(density * numel))`` (docs/algorithms.md section 0)."""
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
    """``a`` and ``b`` must have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape; "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_finite(x: Tensor, name: str = "gradient") -> Tensor:
    """Raise :class:`NonFiniteError` naming ``name`` and the count of NaN/Inf entries.

    Fast path: a NaN or Inf anywhere makes the sum NaN or Inf, so a finite sum proves every
    entry finite with one read and no allocation; only a non-finite sum (a bad entry, or an
    overflow of huge finite values) pays for the element-wise test.
    """
    if x.numel() == 0 or math.isfinite(float(x.sum())):
        return x
    if not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise NonFiniteError(
            f"{name} must be finite; got {n_nan} NaN and {n_inf} Inf of {x.numel()} entries"
        )
    return x


def check_indices(indices: Tensor, numel: int, name: str = "sent") -> Tensor:
    """``indices`` must be a 1-D integer tensor with every entry in [0, numel)."""
    if not isinstance(indices, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of indices; got {type(indices).__name__}")
    if indices.dim() != 1:
        raise ValueError(f"{name} must be 1-D; got shape {tuple(indices.shape)}")
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer indices; got {indices.dtype}")
    if indices.numel() > 0:
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= numel:
            raise ValueError(f"{name} must lie in [0, numel={numel}); got range [{lo}, {hi}]")
    return indices


def check_state_keys(state: Any, keys: set[str], owner: str) -> dict[str, Any]:
    """A state dict for ``owner`` must be a dict with exactly ``keys``."""
    if not isinstance(state, dict) or set(state) != keys:
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"state for {owner} must have keys {sorted(keys)}; got {got}")
    return state


def check_numel(x: Tensor, numel: int, name: str) -> Tensor:
    """``x`` must be a flat floating tensor of exactly ``numel`` entries."""
    check_flat(x, name)
    if x.numel() != numel:
        raise ValueError(f"{name} must have numel={numel} entries; got {x.numel()}")
    return x


def check_settings(cls: type, settings: dict[str, Any], owner: str) -> dict[str, Any]:
    """``settings`` unchanged if they name only, and all required, parameters of ``cls``.

    Used by the registries so that ``make_x(name, **settings)`` fails with the list of valid
    settings instead of a bare TypeError.
    """
    params = inspect.signature(cls).parameters
    valid = list(params)
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown} for {owner}; valid settings: {valid}")
    missing = [
        n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in settings
    ]
    if missing:
        raise ValueError(f"{owner} needs the setting(s) {missing}; valid settings: {valid}")
    return settings


def check_positive_int(value: int, name: str) -> int:
    """``value`` must be an integer >= 1 (bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return value


def check_seed(seed: int, name: str = "seed") -> int:
    """``seed`` must be an integer in [0, 2**64) (what ``torch.Generator.manual_seed`` takes)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"{name} must be an integer in [0, 2**64); got {seed!r}")
    return seed
