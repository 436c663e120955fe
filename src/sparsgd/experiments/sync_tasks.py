"""A training task of the S-SGD studies (network, data, schedule) and its SyncConfig.

    task = SyncTask("LeNet-5 / MNIST", "lenet5", "mnist", epochs=8, lr=0.05, target=0.97)
    config = task.config(method="gtopk", density=0.001, workers=4, out="...", seed=0,
                         data_dir=None)
    config = with_recipe(config, "authors", task.warmup_epochs)     # the row's recipe

The method, density, P, seed and recipe vary inside an experiment; everything else is the
task's. ``epochs`` is the cap every run of the task trains for; ``target`` the test accuracy
whose first epoch the studies report.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparsgd.experiments.datasets import data_dir_for
from sparsgd.sync.config import SyncConfig, check_config
from sparsgd.sync.recipes import apply_recipe

__all__ = [
    "MNIST_CAP_EPOCHS",
    "MNIST_TARGET",
    "RECIPE_WARMUP_EPOCHS",
    "TIMEOUT_S",
    "SyncTask",
    "mnist_task",
    "smoke_task",
    "with_recipe",
]

TIMEOUT_S = 600.0  # a collective that waits this long means a lost peer: fail, do not hang
MNIST_CAP_EPOCHS = 5.0  # every MNIST run's budget in the S-SGD studies
MNIST_TARGET = 0.97  # the MNIST test accuracy whose first epoch the studies report
RECIPE_WARMUP_EPOCHS = 1.0  # the recipes' lr warm-up, shortened to fit the cap (authors: 10)
MNIST_LR = 0.05  # base rate (momentum-free: x 10), batch 32 per worker


@dataclass(frozen=True)
class SyncTask:
    """Network, data and schedule of one S-SGD study (fields as in SyncConfig)."""

    label: str
    model: str
    dataset: str
    epochs: float
    lr: float
    batch_size: int = 32
    momentum: float = 0.9
    weight_decay: float = 0.0
    clip: float | None = None
    reduced: bool = False
    hidden_size: int | None = None
    max_tokens: int | None = None
    bptt: int = 35
    log_every: int = 20
    target: float | None = None  # test accuracy whose first epoch is reported
    warmup_epochs: float | None = None  # the recipes' warm-up length (None: the recipe's own)

    @property
    def key(self) -> str:
        """A short name for folders: ``lenet5-mnist``."""
        return f"{self.model}-{self.dataset}"

    def config(
        self, method: str, density: float, workers: int, out: str, seed: int, data_dir: str | None
    ) -> SyncConfig:
        config = SyncConfig(
            out=out,
            model=self.model,
            dataset=self.dataset,
            data_dir=data_dir_for(self.dataset, data_dir),
            max_tokens=self.max_tokens,
            hidden_size=self.hidden_size,
            reduced=self.reduced,
            method=method,
            density=1.0 if method == "dense" else density,
            memory="none" if method == "dense" else "residual",
            workers=workers,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            clip=self.clip,
            batch_size=self.batch_size,
            epochs=self.epochs,
            bptt=self.bptt,
            seed=seed,
            log_every=self.log_every,
            timeout_s=TIMEOUT_S,
            progress=False,
        )
        return check_config(config)


def with_recipe(config: SyncConfig, recipe: str, warmup_epochs: float | None) -> SyncConfig:
    """``config`` under the named training recipe of :mod:`sparsgd.sync.recipes`, checked."""
    return check_config(apply_recipe(config, recipe, warmup_epochs=warmup_epochs))


def mnist_task(label: str, model: str) -> SyncTask:
    """A network of the S-SGD studies on MNIST: the cap, the target, the recipes' warm-up."""
    return SyncTask(
        label,
        model,
        "mnist",
        epochs=MNIST_CAP_EPOCHS,
        lr=MNIST_LR,
        target=MNIST_TARGET,
        warmup_epochs=RECIPE_WARMUP_EPOCHS,
    )


def smoke_task(target: float | None = 0.8) -> SyncTask:
    """The S-SGD studies' smoke-mode task: a small FNN-3 on the embedded 8x8 digits, 2 epochs,
    half an epoch of warm-up (runs in seconds, needs no data folder; not a result)."""
    return SyncTask(
        "FNN-3 / digits",
        "fnn3",
        "digits",
        epochs=2,
        lr=0.05,
        hidden_size=32,
        target=target,
        warmup_epochs=0.5,
    )
