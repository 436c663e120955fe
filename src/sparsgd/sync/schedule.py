"""Learning rate and density over training: warm-ups, then step decay.

Learning rate. Steps are counted from 0; ``spe`` is the number of steps per epoch, ``e = step /
spe`` the number of epochs done when the step starts, ``N = warmup_epochs * spe`` the number of
warm-up steps and ``s`` the warm-up start (a fraction of the base rate, in [0, 1]):

    warm(step)  = min(1, s + (1 - s) (step + 1) / N)              (1 when N = 0)    # (1)
    decays(e)   = number of decay epochs d with d <= e                              # (2)
    lr(step)    = base_lr * warm(step) * decay_factor ** decays(e)                  # (3)

So the warm-up climbs linearly from ``s * base_lr`` by ``(1 - s) / N`` per step, the first
step already takes one increment (with s = 0 it still moves), the warm-up reaches ``base_lr``
at its last step, and a decay at epoch d applies from the first step of epoch d (0-based) on.
With s = 1/P, (1) is the gTop-k authors' warm-up ``lr/P + (lr - lr/P) i / N`` at iteration
``i = step + 1`` (hclhkbu/gtopkssgd, dl_trainer.py ``_adjust_learning_rate_general``, where i
counts from 0: each of its rates comes one step later than here). The schedule is a pure
function of the step: resuming at step s gives the same rates.

``warmup_start`` is written as a number, or ``"1/P"``: ``s = 1 / P`` for the run's P workers,
resolved where P is known (under torchrun P is only known when the ranks start).

Density warm-up kinds (the stages of :class:`sparsgd.compress.DensitySchedule`, which shares
the first E epochs equally among them and never goes below the target density rho):

    dgc    0.25, 0.0625, 0.0156, 0.004    DGC (Lin et al., ICLR 2018, section 3.4)     # (4)
    gtopk  0.004                          gTop-k authors' code (allreducer.py)          # (5)

so with ``gtopk`` the first E epochs run at max(0.004, rho): a target of 0.004 or denser is
left alone. (The authors' code runs the first epoch at 0.004 whatever the target; a denser
target would then start sparser, which is no warm-up.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sparsgd.compress.warmup import DGC_STAGES

__all__ = ["DENSITY_WARMUPS", "PER_WORKER", "LrSchedule", "warmup_start_fraction"]

# density warm-up kind -> its stages, densest first: (4), (5)
DENSITY_WARMUPS: dict[str, tuple[float, ...]] = {
    "dgc": DGC_STAGES,
    "gtopk": (0.004,),
}
PER_WORKER = "1/P"  # the warm-up start that means base_lr / P


def warmup_start_fraction(text: str, workers: int) -> float:
    """The ``s`` of (1): ``"1/P"`` -> ``1 / workers``; ``"0.25"`` -> 0.25 (must be in [0, 1])."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    if not isinstance(text, str):
        raise ValueError(
            f"warmup_start must be a string (a number or {PER_WORKER!r}); got {text!r}"
        )
    if text.strip().upper() == PER_WORKER:
        return 1.0 / workers
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(
            f"warmup_start must be a number in [0, 1] or {PER_WORKER!r} (a fraction of --lr at "
            f"the start of the warm-up); got {text!r}"
        )
    return value


@dataclass(frozen=True)
class LrSchedule:
    """``lr(step)`` as in (1)-(3); every argument checked at construction."""

    base_lr: float
    steps_per_epoch: int
    warmup_epochs: float = 0.0
    decay_epochs: tuple[float, ...] = ()
    decay_factor: float = 0.1
    warmup_start: float = 0.0  # s of (1), already resolved (see warmup_start_fraction)

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
        if not (math.isfinite(self.warmup_start) and 0 <= self.warmup_start <= 1):
            raise ValueError(f"warmup_start must be in [0, 1]; got {self.warmup_start}")

    def lr(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step must be >= 0; got {step}")
        n, s = self.warmup_epochs * self.steps_per_epoch, self.warmup_start
        warm = min(1.0, s + (1.0 - s) * (step + 1) / n) if n > 0 else 1.0  # (1)
        epoch = step / self.steps_per_epoch
        decays = sum(1 for d in self.decay_epochs if d <= epoch)  # (2)
        return self.base_lr * warm * self.decay_factor**decays  # (3)
