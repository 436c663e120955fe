"""scikit-learn's 8x8 handwritten digits, the embedded data set (no file, no download).

    1,797 images (N, 8, 8) with pixels 0..16, labels 0..9
    x = (pixel / 16 - DIGITS_MEAN) / DIGITS_STD, shape (N, 1, 8, 8) float32

The split is fixed: a permutation drawn once from ``DIGITS_SPLIT_SEED`` puts
``DIGITS_TEST_SIZE`` images in the test set and the other 1,437 in the training set, the same
on every rank and in every run. The constants are the pixel mean and standard deviation
over all 1,797 images after scaling to [0, 1].
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from sparsgd.data.bundle import DatasetBundle

__all__ = [
    "DIGITS_MEAN",
    "DIGITS_SPLIT_SEED",
    "DIGITS_STD",
    "DIGITS_TEST_SIZE",
    "load_digits",
]

DIGITS_MEAN, DIGITS_STD = 0.3053, 0.3760
DIGITS_MAX_PIXEL = 16.0
DIGITS_TEST_SIZE = 360  # 20 % of 1,797, rounded
DIGITS_SPLIT_SEED = 0
NUM_CLASSES = 10


def load_digits() -> DatasetBundle:
    """The digits as a classification bundle with the fixed train / test split."""
    pixels, target = _read_digits()
    images = torch.from_numpy(pixels.astype(np.float32) / DIGITS_MAX_PIXEL)  # (N, 8, 8)
    x = ((images - DIGITS_MEAN) / DIGITS_STD).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.from_numpy(target.astype(np.int64))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    test, train = order[:DIGITS_TEST_SIZE], order[DIGITS_TEST_SIZE:]
    return DatasetBundle(
        name="digits",
        task="classification",
        train=TensorDataset(x[train], y[train]),
        test=TensorDataset(x[test], y[test]),
        num_classes=NUM_CLASSES,
        input_shape=(1, 8, 8),
        source="sklearn.datasets.load_digits",
    )


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(pixels (N, 8, 8) float64, labels (N,))``: scikit-learn's bundled ``digits.csv.gz``
    read the way its ``load_digits`` reads it (``np.loadtxt``, comma-separated, the label in
    the last column), without importing scikit-learn, which costs about 1.3 s of CPU in every
    process that loads the digits; through ``load_digits`` itself if the file is elsewhere."""
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations)))
        path = folder / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, mode="rt", encoding="utf-8") as rows:
                data = np.loadtxt(rows, delimiter=",")  # (N, 65)
            return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
    from sklearn.datasets import load_digits as sklearn_digits  # bundled with scikit-learn

    raw = sklearn_digits()
    return raw.images, raw.target
