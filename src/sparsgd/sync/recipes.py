"""Training recipes: named presets of the fields that shape how an S-SGD run trains.

A recipe sets the optimiser, memory and warm-up fields of a :class:`SyncConfig` and leaves
everything a study chooses to the study (model, data, method, density, P, batch, epochs, the
learning rate's decays), so two runs that differ only in their recipe differ only in these:

    base   = SyncConfig(out="runs/a", model="lenet5", dataset="mnist", method="gtopk",
                        density=0.00025, workers=4, lr=0.05, epochs=5)
    config = apply_recipe(base, "authors", warmup_epochs=1)  # a copy; config.recipe == "authors"

| recipe | memory | momentum | weight decay | lr | lr warm-up from lr/P | density warm-up |
| plain | as set | as set | as set | as set | none | none |
| authors | residual | 0.9 (LM 0) | 1e-4 (LM 0) | as set | W = 10 (LM: none) | 1 epoch at 0.004 |
| momentum-free | residual | 0 | 1e-4 (LM 0) | x 1/(1 - 0.9) (LM x 1) | as authors | as authors |
| dgc | dgc, m = 0.9 | (in the memory) | 1e-4 (LM 0) | as set | W = 5 | DGC's, 4 epochs |

(LM: a language model, ``config.is_language``.) ``warmup_epochs`` replaces the recipe's W: a
study with a budget of a few epochs cannot afford the authors' 10 warm-up epochs (their CIFAR-10
runs are 141 epochs long), so it passes a W that fits its budget and says so. The warm-up
starts at lr/P for the run's P (``warmup_start = "1/P"``, resolved when the ranks start).

Momentum-free's rescale. With momentum m, heavy-ball SGD keeps u = m u + g and steps by lr u;
under a constant gradient g the velocity tends to

    u* = g / (1 - m)                                                                 # (1)

so its steady-state step is lr g / (1 - m): SGD without momentum at rate lr / (1 - m) takes the
same step (m = 0.9: a factor 10), without the velocity that turns the bursts of error feedback
(a residual entry delivered after many steps of accumulation) into repeated overshoots.

The gTop-k authors' recipe (hclhkbu/gtopkssgd): the averaged sparse aggregate is written into
the gradients and a plain ``torch.optim.SGD`` step follows, as :mod:`sparsgd.sync.step` does.
Their CIFAR-10 runs decay the rate x0.1 at epochs 81 and 122 of 141 (and 155, past the end);
the recipe leaves decays to the study (``lr_decay_epochs``), as it leaves ``clip`` (the authors
clip nothing). Their PTB LSTM uses its own step schedule with no warm-up, hence "LM: none".

What DGC does that the ``dgc`` recipe does not (Lin et al., ICLR 2018, and its public code,
synxlin/deep-gradient-compression): it sparsifies only tensors of 2 or more dimensions and sends
biases and batch-norm parameters whole; it selects with a threshold estimated from a 1 % sample
of each tensor instead of exact top-k over the whole model; its weight decay is added on each
worker outside the compression and goes through its own momentum buffer, whereas here, with
``memory="dgc"``, the optimizer runs without momentum, so weight decay acts undamped by
momentum; its CIFAR configuration anneals the rate by a cosine after warm-up. Momentum factor
masking (u[sent] = 0) is implemented (:mod:`sparsgd.compress.momentum`); local gradient
clipping is ``clip``, left as configured (the public code's configurations leave it off).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sparsgd.sync.config import SyncConfig
from sparsgd.sync.schedule import PER_WORKER

__all__ = ["RECIPES", "RESCALED_FIELDS", "Recipe", "apply_recipe"]

AUTHORS_MOMENTUM = 0.9  # dl_trainer.py: self.m = 0.9 (PTB: 0)
AUTHORS_WEIGHT_DECAY = 1e-4  # dl_trainer.py: weight_decay = 1e-4 (PTB: 0)
AUTHORS_WARMUP_EPOCHS = 10.0  # dl_trainer.py: warmup = 10 (of 141 CIFAR-10 epochs)
AUTHORS_DENSITY_WARMUP_EPOCHS = 1.0  # allreducer.py: _dynamic_densities = [0.004], then rho
DGC_MOMENTUM = 0.9  # configs/__init__.py: momentum 0.9, the momentum-correction factor
DGC_WEIGHT_DECAY = 1e-4  # configs/cifar/__init__.py
DGC_WARMUP_EPOCHS = 5.0  # configs/__init__.py: warmup_lr_epochs = 5
DGC_DENSITY_WARMUP_EPOCHS = 4.0  # paper, section 3.4: 75 % to 99.9 % sparsity in 4 epochs
# fields a recipe scales rather than sets: an explicit value is the base it scales
RESCALED_FIELDS = frozenset({"lr"})

Settings = Callable[[SyncConfig, float | None], dict[str, Any]]


@dataclass(frozen=True)
class Recipe:
    """A named preset: ``settings(config, warmup_epochs)`` gives the fields it sets."""

    name: str
    summary: str  # one line: what it changes
    source: str  # where its numbers come from
    settings: Settings


def _warmup(warmup_epochs: float | None, default: float) -> float:
    return default if warmup_epochs is None else float(warmup_epochs)


def _plain(c: SyncConfig, warmup_epochs: float | None) -> dict[str, Any]:
    if warmup_epochs is not None:
        raise ValueError(
            f"recipe 'plain' has no learning-rate warm-up; got warmup_epochs={warmup_epochs} "
            "(pass None, or set SyncConfig.warmup_epochs yourself)"
        )
    return {
        "warmup_epochs": 0.0,
        "warmup_start": "0",
        "density_warmup": 0.0,
        "density_warmup_kind": "dgc",
    }


def _authors(c: SyncConfig, warmup_epochs: float | None) -> dict[str, Any]:
    lm = c.is_language
    return {
        "memory": "residual",
        "momentum": 0.0 if lm else AUTHORS_MOMENTUM,
        "weight_decay": 0.0 if lm else AUTHORS_WEIGHT_DECAY,
        "warmup_epochs": _warmup(warmup_epochs, 0.0 if lm else AUTHORS_WARMUP_EPOCHS),
        "warmup_start": PER_WORKER,
        "density_warmup": AUTHORS_DENSITY_WARMUP_EPOCHS,
        "density_warmup_kind": "gtopk",
    }


def _momentum_free(c: SyncConfig, warmup_epochs: float | None) -> dict[str, Any]:
    authors = _authors(c, warmup_epochs)
    # (1): 10 for m = 0.9, 1 for an LM's m = 0 (rounded: 1 - 0.9 is inexact in binary)
    rescale = round(1.0 / (1.0 - authors["momentum"]), 9)
    return {**authors, "momentum": 0.0, "lr": c.lr * rescale}


def _dgc(c: SyncConfig, warmup_epochs: float | None) -> dict[str, Any]:
    return {
        "memory": "dgc",
        "momentum": DGC_MOMENTUM,
        "weight_decay": 0.0 if c.is_language else DGC_WEIGHT_DECAY,
        "warmup_epochs": _warmup(warmup_epochs, DGC_WARMUP_EPOCHS),
        "warmup_start": PER_WORKER,
        "density_warmup": DGC_DENSITY_WARMUP_EPOCHS,
        "density_warmup_kind": "dgc",
    }


RECIPES: dict[str, Recipe] = {
    "plain": Recipe(
        "plain",
        "no warm-ups; memory, momentum and weight decay as configured",
        "sparsgd's training before recipes existed",
        _plain,
    ),
    "authors": Recipe(
        "authors",
        "gTop-k authors' training: error feedback, momentum 0.9, weight decay 1e-4 (language "
        "models: 0 and 0); lr warm-up from lr/P over W epochs (10; language models: none); "
        "first epoch at density 0.004 when the target is sparser",
        "hclhkbu/gtopkssgd: dl_trainer.py (optimizer, _adjust_learning_rate_general), "
        "allreducer.py (_dynamic_densities)",
        _authors,
    ),
    "momentum-free": Recipe(
        "momentum-free",
        "the authors' recipe with momentum 0 and lr rescaled by 1/(1 - 0.9) = 10, the "
        "heavy-ball steady-state step (language models, momentum-free already: lr kept)",
        "authors (above); the rescale is (1) of this module",
        _momentum_free,
    ),
    "dgc": Recipe(
        "dgc",
        "DGC: momentum correction with factor masking (memory dgc, factor 0.9), weight decay "
        "1e-4 (language models: 0), density 0.25, 0.0625, 0.0156, 0.004 over 4 epochs, lr "
        "warm-up from lr/P over W epochs (5)",
        "Lin et al., Deep Gradient Compression, ICLR 2018, sections 3.2-3.4; "
        "synxlin/deep-gradient-compression: configs/__init__.py, train.py",
        _dgc,
    ),
}


def apply_recipe(
    config: SyncConfig, name: str, *, warmup_epochs: float | None = None
) -> SyncConfig:
    """A copy of ``config`` with recipe ``name``'s settings and ``recipe=name``.

    ``warmup_epochs`` replaces the recipe's learning-rate warm-up length W (None: the
    recipe's own). The lr is rescaled where the recipe says so (momentum-free), so a config
    that already follows a recipe is refused. The copy is checked when it is trained, as any.
    """
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}; got {name!r}")
    if config.recipe is not None:
        raise ValueError(
            f"config already follows recipe {config.recipe!r}; apply {name!r} to a config "
            "without one (a second recipe would rescale the learning rate again)"
        )
    if warmup_epochs is not None:
        number = isinstance(warmup_epochs, (int, float)) and not isinstance(warmup_epochs, bool)
        if not (number and math.isfinite(warmup_epochs) and warmup_epochs >= 0):
            raise ValueError(
                f"warmup_epochs must be a finite number >= 0 (epochs of lr warm-up); "
                f"got {warmup_epochs!r}"
            )
    settings = RECIPES[name].settings(config, warmup_epochs)
    return replace(config, recipe=name, **settings)
