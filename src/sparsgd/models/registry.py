"""The model registry: a name and a :class:`ModelSpec` give a freshly initialised network.

    model = build_model("lenet5", ModelSpec(input_shape=(1, 28, 28), num_classes=10), seed=0)

Identical initial parameters on every rank: with ``seed`` given, the model is built inside
``torch.random.fork_rng`` after ``torch.manual_seed(seed)``, so its parameters depend on
``seed`` alone and the caller's global random state is left exactly as it was. The S-SGD
trainer calls ``build_model(name, spec, seed=seed)`` on every rank and gets bit-identical
models without broadcasting. With ``seed=None`` the model draws from the global generator
(the caller's own ``torch.manual_seed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from sparsgd.models.fnn3 import build_fnn3
from sparsgd.models.lenet5 import build_lenet5
from sparsgd.models.logreg import build_logreg
from sparsgd.models.lstm import build_lstm
from sparsgd.models.resnet20 import build_resnet20
from sparsgd.models.spec import ModelSpec
from sparsgd.models.vgg16 import build_vgg16

__all__ = ["LANGUAGE_MODELS", "MODELS", "build_model", "count_parameters"]

logger = logging.getLogger(__name__)

MODELS: dict[str, Callable[[ModelSpec], nn.Module]] = {
    "logreg": build_logreg,
    "fnn3": build_fnn3,
    "lenet5": build_lenet5,
    "resnet20": build_resnet20,
    "vgg16": build_vgg16,
    "lstm": build_lstm,
}

LANGUAGE_MODELS = frozenset({"lstm"})  # forward(tokens, hidden) -> (logits, hidden)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars (shared tensors, e.g. tied weights, counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(name: str, spec: ModelSpec, seed: int | None = None) -> nn.Module:
    """A new ``name`` network fitting ``spec``; deterministic in ``seed`` when it is given."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}; got {name!r}")
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec; got {type(spec).__name__}")
    if seed is None:
        model = MODELS[name](spec)
    else:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int or None; got {seed!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = MODELS[name](spec)
    logger.debug("built %s with %d parameters", name, count_parameters(model))
    return model
