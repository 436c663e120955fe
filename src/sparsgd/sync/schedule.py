"""Learning rate over training: linear warm-up, then step decay (Goyal et al. 2017 style).

Steps are counted from 0; ``spe`` is the number of steps per epoch and ``e = step / spe`` the
number of epochs done when the step starts:

    warm(step)  = min(1, (step + 1) / (warmup_epochs * spe))     (1 when warmup_epochs = 0)
    decays(e)   = number of decay epochs d with d <= e
    lr(step)    = base_lr * warm(step) * decay_factor ** decays(e)

So the first step already moves (lr > 0), warm-up reaches ``base_lr`` at the last step of the
warm-up epochs, and a decay at epoch d applies from the first step of epoch d (0-based) on.
The schedule is a pure function of the step: resuming at step s gives the same rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LrSchedule"]


@dataclass(frozen=True)
class LrSchedule:
    """``lr(step)`` as above; every argument checked at construction."""

    base_lr: float
    steps_per_epoch: int
    warmup_epochs: float = 0.0
    decay_epochs: tuple[float, ...] = ()
    decay_factor: float = 0.1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base_lr) and self.base_lr > 0):
            raise ValueError(f"lr must be a finite number > 0; got {self.base_lr}")
        if self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1; got {self.steps_per_epoch}")
        if not (math.isfinite(self.warmup_epochs) and self.warmup_epochs >= 0):
            raise ValueError(
                f"warmup_epochs must be a finite number >= 0; got {self.warmup_epochs}"
            )
        if any(not (math.isfinite(d) and d > 0) for d in self.decay_epochs):
            raise ValueError(f"lr_decay_epochs must be finite and > 0; got {self.decay_epochs}")
        if not (math.isfinite(self.decay_factor) and 0 < self.decay_factor <= 1):
            raise ValueError(f"lr_decay_factor must be in (0, 1]; got {self.decay_factor}")

    def lr(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step must be >= 0; got {step}")
        warmup_steps = self.warmup_epochs * self.steps_per_epoch
        warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
        epoch = step / self.steps_per_epoch
        decays = sum(1 for d in self.decay_epochs if d <= epoch)
        return self.base_lr * warm * self.decay_factor**decays
