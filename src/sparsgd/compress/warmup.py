"""Density warm-up (Deep Gradient Compression, section 3.4): start dense-ish, then sparsify.

With stages rho_1 >= rho_2 >= ... >= rho_S (default 0.25, 0.0625, 0.0156, 0.004), target
density rho and W warm-up epochs, at (fractional) epoch e:

    density(e) = max(rho_{j(e)}, rho),  j(e) = floor(e S / W) + 1   for 0 <= e < W   # (1)
    density(e) = rho                                                  for e >= W      # (2)

so the stages share the warm-up epochs equally and a stage sparser than the target is
replaced by the target. W = 0 means no warm-up. The schedule is a pure function of e: a
resumed run gets the same density from the same epoch. ``state_dict`` holds only the settings
(target, W, stages), so a checkpoint restores the same schedule like any other component.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from sparsgd.compress.checks import check_density, check_state_keys

__all__ = ["DGC_STAGES", "DensitySchedule"]

DGC_STAGES = (0.25, 0.0625, 0.0156, 0.004)  # DGC's warm-up densities, one per epoch


class DensitySchedule:
    """Density for each (fractional) epoch: warm-up stages, then ``target``."""

    def __init__(
        self, target: float, warmup_epochs: float = 4, stages: Sequence[float] = DGC_STAGES
    ) -> None:
        self.target = check_density(target, "target")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, (int, float)):
            raise TypeError(f"warmup_epochs must be a number >= 0; got {warmup_epochs!r}")
        if not math.isfinite(warmup_epochs) or warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be finite and >= 0; got {warmup_epochs}")
        stages = tuple(check_density(s, "stages[i]") for s in stages)
        if warmup_epochs > 0 and not stages:
            raise ValueError("stages must hold at least one density when warmup_epochs > 0")
        if any(a < b for a, b in itertools.pairwise(stages)):
            raise ValueError(f"stages must be non-increasing; got {list(stages)}")
        self.warmup_epochs = float(warmup_epochs)
        self.stages = stages

    def density(self, epoch: float) -> float:
        """Density to use at ``epoch`` (0-based, fractional: epoch + batch / batches)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
            raise TypeError(f"epoch must be a number >= 0; got {epoch!r}")
        if not math.isfinite(epoch) or epoch < 0:
            raise ValueError(f"epoch must be finite and >= 0; got {epoch}")
        if epoch >= self.warmup_epochs:
            return self.target  # (2)
        stage = min(len(self.stages) - 1, math.floor(epoch * len(self.stages) / self.warmup_epochs))
        return max(self.stages[stage], self.target)  # (1)

    def state_dict(self) -> dict[str, Any]:
        """The settings, the schedule's only state."""
        return {
            "target": self.target,
            "warmup_epochs": self.warmup_epochs,
            "stages": list(self.stages),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore settings saved by :meth:`state_dict`, checked as the constructor checks them."""
        check_state_keys(state, {"target", "warmup_epochs", "stages"}, "DensitySchedule")
        checked = DensitySchedule(state["target"], state["warmup_epochs"], state["stages"])
        self.target, self.warmup_epochs = checked.target, checked.warmup_epochs
        self.stages = checked.stages

    def __repr__(self) -> str:
        return (
            f"DensitySchedule(target={self.target}, warmup_epochs={self.warmup_epochs}, "
            f"stages={list(self.stages)})"
        )
