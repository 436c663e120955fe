"""A user's own model and data as a :class:`Problem`: any ``nn.Module`` factory, any Datasets.

    problem = UserProblem.of(Net, train_set, test_set, seed=0)   # (1) (2) in the caller
    bundle  = problem.load()                                     # (3) in every process
    model   = problem.module()                                   # (4) the same on every rank

(1) The factory must be picklable, so that every worker process can call it: a module-level
function or class (a lambda or a function defined inside another fails, and the error says
so). (2) The Datasets are read once, in the caller, into two tensors each: ``x`` stacked from
the items' first element (N, *input_shape) and ``y`` from their integer labels (N,); the
classes are ``max(y) + 1`` over both splits. Only classification is supported: each item is
``(x, y)`` with an integer ``y``. (3) :meth:`load` wraps the tensors as a
:class:`~sparsgd.data.DatasetBundle` named "user", so sharding, batching and scoring are the
library's own (sparsgd.worker.tasks). (4) :meth:`module` calls the factory under a forked
random state seeded with ``seed``, as :func:`sparsgd.models.build_model` does for the named
models, so every rank starts from the same parameters without a broadcast.

As a :class:`Problem`, it runs the asynchronous and simulated modes unchanged; the synchronous
trainer takes it through ``sparsgd.sync.build.build_parts(..., problem)``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from sparsgd.data import DatasetBundle
from sparsgd.worker.flat_model import FlatModel
from sparsgd.worker.problem import Problem

__all__ = ["UserProblem", "check_factory", "dataset_tensors"]

USER_DATASET = "user"  # the bundle's name, and ``dataset`` in config.json and summary.json


def check_factory(factory: Any) -> str:
    """(1) ``factory``'s importable name; raises when worker processes could not rebuild it."""
    if not callable(factory):
        raise TypeError(
            f"model must be a zero-argument callable returning an nn.Module; got {factory!r}"
        )
    try:
        pickle.dumps(factory)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise ValueError(
            f"model must be picklable so that every worker process can build it: define it at "
            f"module level (a class or a def, not a lambda or a nested function); got "
            f"{getattr(factory, '__qualname__', factory)!r} ({err})"
        ) from None
    return f"{factory.__module__}.{getattr(factory, '__qualname__', type(factory).__name__)}"


def dataset_tensors(dataset: Dataset, name: str) -> tuple[Tensor, Tensor]:
    """(2) ``(x, y)``: the items' inputs stacked (N, ...) float32, their labels (N,) int64."""
    try:
        size = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{name} must be a sized torch Dataset; got {type(dataset).__name__}"
        ) from None
    if size == 0:
        raise ValueError(f"{name} must hold at least one (x, y) item; got an empty dataset")
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:  # no copy item by item
        x, y = dataset.tensors
        if y.dim() != 1 or y.is_floating_point() or bool((y < 0).any()):
            raise ValueError(
                f"{name} labels must be integer classes >= 0, shape (N,); got {y!r:.80}"
            )
        return x.float(), y.long()
    inputs, labels = [], []
    for i in range(size):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(
                f"{name}[{i}] must be an (x, y) pair for classification; got {item!r:.80}"
            )
        x, y = item
        y = torch.as_tensor(y)
        if y.numel() != 1 or y.is_floating_point() or int(y) < 0:
            raise ValueError(f"{name}[{i}] label must be an integer class >= 0; got {y!r}")
        inputs.append(torch.as_tensor(x, dtype=torch.float32))
        labels.append(int(y))
    return torch.stack(inputs), torch.tensor(labels, dtype=torch.int64)


@dataclass(frozen=True)
class UserProblem(Problem):
    """``factory()`` on the tensors of two classification Datasets (module docstring)."""

    factory: Callable[[], nn.Module] | None = None
    train_x: Tensor | None = None  # (N, *input_shape) float32
    train_y: Tensor | None = None  # (N,) int64
    test_x: Tensor | None = None
    test_y: Tensor | None = None

    @classmethod
    def of(
        cls, factory: Callable[[], nn.Module], train_set: Dataset, test_set: Dataset, seed: int = 0
    ) -> UserProblem:
        """(1) (2) Check the factory, read both Datasets; the model is built once as a check."""
        name = check_factory(factory)
        train_x, train_y = dataset_tensors(train_set, "train_set")
        test_x, test_y = dataset_tensors(test_set, "test_set")
        if train_x.shape[1:] != test_x.shape[1:]:
            raise ValueError(
                f"test_set inputs must have the train_set's shape {tuple(train_x.shape[1:])}; "
                f"got {tuple(test_x.shape[1:])}"
            )
        problem = cls(
            name, USER_DATASET, None, seed, (), None, factory, train_x, train_y, test_x, test_y
        )
        problem.module()
        return problem

    def load(self) -> DatasetBundle:
        """(3) The tensors as a classification bundle."""
        classes = int(max(self.train_y.max(), self.test_y.max())) + 1
        return DatasetBundle(
            name=USER_DATASET,
            task="classification",
            train=TensorDataset(self.train_x, self.train_y),
            test=TensorDataset(self.test_x, self.test_y),
            num_classes=classes,
            input_shape=tuple(self.train_x.shape[1:]),
            source="python",
        )

    def module(self) -> nn.Module:
        """(4) ``factory()`` under the random state of ``seed``: the same on every call."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.factory()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model() must return an nn.Module; got {type(model).__name__}")
        return model

    def build_model(self, bundle: DatasetBundle) -> FlatModel:
        return FlatModel(self.module())

    def to_record(self) -> dict[str, Any]:
        """What config.json shows; a user's run cannot be resumed from it (no tensors)."""
        return {**super().to_record(), "num_train": len(self.train_y), "num_test": len(self.test_y)}
