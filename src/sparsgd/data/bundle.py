"""What every loader returns: the splits of one data set and the shapes a model must fit.

Two kinds of data, told apart by ``task``:

    classification: train / test are TensorDataset(x, y)
                    x: (N, *input_shape) float32, normalized;  y: (N,) int64 in [0, num_classes)
    language:       train / valid / test are token streams, (N,) int64 ids in [0, vocab_size),
                    in reading order (batchify them with sparsgd.data.lm_batches)

A token stream stays a plain tensor because its order is its content: it is cut into
contiguous pieces, never shuffled (see :func:`sparsgd.data.shard.shard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor
from torch.utils.data import TensorDataset

__all__ = ["TASKS", "DatasetBundle", "Split", "Task", "split_size"]

Task = Literal["classification", "language"]
TASKS: tuple[Task, ...] = ("classification", "language")

Split = TensorDataset | Tensor  # TensorDataset(x, y) for classification; (N,) ids for language


def split_size(split: Split) -> int:
    """Samples in a classification split, tokens in a token stream."""
    return len(split) if isinstance(split, TensorDataset) else int(split.numel())


@dataclass(frozen=True)
class DatasetBundle:
    """One loaded data set (see the module docstring for the layout of each ``task``).

    name:        registry name it was loaded under.
    task:        "classification" or "language".
    train/test:  the splits; ``valid`` only where the data set defines one (PTB).
    num_classes, input_shape: classification only (``input_shape`` is one sample's shape).
    vocab_size, vocabulary:   language only (``vocabulary[i]`` is the word of id ``i``).
    source:      where the data came from (a folder, a package, "generated"), for run logs.
    """

    name: str
    task: Task
    train: Split
    test: Split
    valid: Split | None = None
    num_classes: int | None = None
    input_shape: tuple[int, ...] | None = None
    vocab_size: int | None = None
    vocabulary: tuple[str, ...] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}; got {self.task!r}")
        expected = TensorDataset if self.task == "classification" else Tensor
        for split_name in ("train", "valid", "test"):
            split = getattr(self, split_name)
            if split is None and split_name == "valid":
                continue
            if not isinstance(split, expected):
                raise TypeError(
                    f"{split_name} of a {self.task} data set must be a {expected.__name__}; "
                    f"got {type(split).__name__}"
                )
        if self.task == "classification" and (self.num_classes is None or not self.input_shape):
            raise ValueError("a classification data set needs num_classes and input_shape")
        if self.task == "language" and self.vocab_size is None:
            raise ValueError("a language data set needs vocab_size")

    @property
    def num_train(self) -> int:
        """Training samples (classification) or training tokens (language)."""
        return split_size(self.train)

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary for run logs."""
        return {
            "name": self.name,
            "task": self.task,
            "num_train": self.num_train,
            "num_test": split_size(self.test),
            "num_valid": None if self.valid is None else split_size(self.valid),
            "num_classes": self.num_classes,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "vocab_size": self.vocab_size,
            "source": self.source,
        }
