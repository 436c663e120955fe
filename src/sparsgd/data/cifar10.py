"""CIFAR-10 from the standard python batches (``cifar-10-python.tar.gz``, extracted).

    <folder>/data_batch_1 .. data_batch_5   10,000 images each (the 50,000 training images)
    <folder>/test_batch                      10,000 test images

Each batch is a pickled dict with ``b"data"``: (N, 3072) uint8, one row per image holding the
1024 red, then 1024 green, then 1024 blue pixels of a 32x32 image in row-major order, and
``b"labels"``: N ints in 0..9. The folder is ``data_dir``, ``data_dir/cifar-10-batches-py``
or ``$SPARSGD_DATA/cifar-10-batches-py``. Images become
``x[c] = (pixel / 255 - MEAN[c]) / STD[c]``, shape (N, 3, 32, 32) float32; labels int64.
No augmentation here: random crops and flips belong to the training loop.

The batches are pickles; they are read with an unpickler that only accepts the few numpy
constructors a CIFAR batch needs, so a tampered file cannot run code.
"""

from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from sparsgd.data.bundle import DatasetBundle
from sparsgd.data.files import DataFileError, find_file, find_folder, read_bytes

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR_SUBDIR",
    "TEST_BATCH",
    "TRAIN_BATCHES",
    "load_cifar10",
    "read_cifar_batch",
]

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # per channel, over the 50,000 training images
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR_SUBDIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
REMEDY = (
    "Download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, "
    "extract it and point data_dir at the cifar-10-batches-py folder (or its parent)"
)
# (module, name) a CIFAR batch may reference; "numpy.core" is "numpy._core" since numpy 2.
_ALLOWED = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module = module.replace("numpy.core.", "numpy._core.")
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return getattr(importlib.import_module(module), name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one batch file, validated."""
    try:
        batch = _BatchUnpickler(io.BytesIO(read_bytes(path, REMEDY)), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataFileError(path, f"not a readable CIFAR-10 batch ({error})", REMEDY) from error
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataFileError(path, 'expected a dict with keys b"data" and b"labels"', REMEDY)
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != np.prod(IMAGE_SHAPE):
        raise DataFileError(
            path, f"b'data' must be (N, 3072) uint8; got {data.dtype} {data.shape}", REMEDY
        )
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DataFileError(
            path,
            f"b'labels' must hold {data.shape[0]} integers; got {labels.dtype} {labels.shape}",
            REMEDY,
        )
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFileError(
            path,
            f"labels must be in 0..{NUM_CLASSES - 1}; got {labels.min()}..{labels.max()}",
            REMEDY,
        )
    return data.reshape(-1, *IMAGE_SHAPE), labels.astype(np.int64)


def _split(folder: Path, names: tuple[str, ...]) -> TensorDataset:
    parts = [read_cifar_batch(find_file(folder, name, REMEDY)) for name in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    x = (torch.from_numpy(images).float() / 255.0 - mean) / std  # (N, 3, 32, 32)
    return TensorDataset(x, torch.from_numpy(labels))


def load_cifar10(data_dir: str | Path | None = None) -> DatasetBundle:
    """CIFAR-10 from the python batches in ``data_dir`` (see the module docstring)."""
    folder = find_folder(data_dir, CIFAR_SUBDIR, (*TRAIN_BATCHES, TEST_BATCH), REMEDY)
    return DatasetBundle(
        name="cifar10",
        task="classification",
        train=_split(folder, TRAIN_BATCHES),
        test=_split(folder, (TEST_BATCH,)),
        num_classes=NUM_CLASSES,
        input_shape=IMAGE_SHAPE,
        source=str(folder),
    )
