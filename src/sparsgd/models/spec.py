"""What a model must fit: the data's shapes, plus the few size settings the models offer.

A :class:`ModelSpec` is built from a data set (``ModelSpec.of(bundle)``, duck-typed so that
``models`` never imports ``data``) or by hand::

    spec = ModelSpec(input_shape=(1, 28, 28), num_classes=10)        # MNIST
    spec = ModelSpec(vocab_size=10_000, reduced=True)                 # PTB, small LSTM

Each builder asks for what it needs through the ``need_*`` methods, whose errors name the
model, the field and the value found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

__all__ = ["DataShape", "ModelSpec"]


class DataShape(Protocol):
    """Anything with the three shape attributes of a data bundle (``sparsgd.data``)."""

    @property
    def input_shape(self) -> tuple[int, ...] | None: ...

    @property
    def num_classes(self) -> int | None: ...

    @property
    def vocab_size(self) -> int | None: ...


def _check_positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


@dataclass(frozen=True)
class ModelSpec:
    """Shapes a model must fit and optional size settings.

    input_shape: ``(C, H, W)`` for images, ``(D,)`` for feature vectors (classifiers).
    num_classes: number of output classes (classifiers).
    vocab_size:  number of token ids (language models).
    reduced:     the small setting of a model meant for quick CPU runs (LSTM: 200 units).
    hidden_size: override of the model's hidden width (LSTM units, FNN-3 hidden layers).
    tie_weights: LSTM decoder shares the embedding matrix.
    dropout:     override of the LSTM dropout probability.
    """

    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = None
    vocab_size: int | None = None
    reduced: bool = False
    hidden_size: int | None = None
    tie_weights: bool = False
    dropout: float | None = None

    def __post_init__(self) -> None:
        if self.input_shape is not None:
            if not isinstance(self.input_shape, tuple) or not self.input_shape:
                raise ValueError(
                    f"input_shape must be a non-empty tuple of ints; got {self.input_shape!r}"
                )
            for size in self.input_shape:
                _check_positive_int(size, "every entry of input_shape")
        for name in ("num_classes", "vocab_size", "hidden_size"):
            value = getattr(self, name)
            if value is not None:
                _check_positive_int(value, name)
        if self.num_classes is not None and self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2; got {self.num_classes}")
        if self.dropout is not None and not (
            math.isfinite(self.dropout) and 0.0 <= self.dropout < 1.0
        ):
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout}")

    @classmethod
    def of(
        cls,
        data: DataShape,
        *,
        reduced: bool = False,
        hidden_size: int | None = None,
        tie_weights: bool = False,
        dropout: float | None = None,
    ) -> ModelSpec:
        """The spec of a data bundle, with the given size settings."""
        return cls(
            input_shape=data.input_shape,
            num_classes=data.num_classes,
            vocab_size=data.vocab_size,
            reduced=reduced,
            hidden_size=hidden_size,
            tie_weights=tie_weights,
            dropout=dropout,
        )

    def need_num_classes(self, model: str) -> int:
        if self.num_classes is None:
            raise ValueError(f"{model} needs spec.num_classes (a classifier); got None")
        return self.num_classes

    def need_vocab_size(self, model: str) -> int:
        if self.vocab_size is None:
            raise ValueError(f"{model} needs spec.vocab_size (a language model); got None")
        return self.vocab_size

    def need_image(self, model: str) -> tuple[int, int, int]:
        """``(C, H, W)``; a convolutional model refuses flat feature vectors."""
        shape = self.input_shape
        if shape is None or len(shape) != 3:
            raise ValueError(
                f"{model} needs spec.input_shape = (channels, height, width) of an image; "
                f"got {shape!r}"
            )
        return shape[0], shape[1], shape[2]

    def need_features(self, model: str) -> int:
        """Number of inputs once flattened: the product of ``input_shape``."""
        if self.input_shape is None:
            raise ValueError(f"{model} needs spec.input_shape; got None")
        return math.prod(self.input_shape)
