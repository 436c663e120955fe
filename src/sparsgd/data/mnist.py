"""MNIST and Fashion-MNIST from the four standard IDX files (see :mod:`sparsgd.data.idx`).

    <folder>/train-images-idx3-ubyte[.gz]   (60000, 28, 28) uint8
    <folder>/train-labels-idx1-ubyte[.gz]   (60000,) uint8 in 0..9
    <folder>/t10k-images-idx3-ubyte[.gz]    (10000, 28, 28) uint8
    <folder>/t10k-labels-idx1-ubyte[.gz]    (10000,) uint8 in 0..9

The folder is ``data_dir`` or ``data_dir/mnist`` (``data_dir/fashion-mnist``), else
``$SPARSGD_DATA/<name>``; Fashion-MNIST is also found by itself where Debian's
``dataset-fashion-mnist`` package installs it. Pixels become
``x = (pixel / 255 - MEAN) / STD``, shape (N, 1, 28, 28) float32; labels int64.
MEAN and STD are the training images' pixel mean and standard deviation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from sparsgd.data.bundle import DatasetBundle
from sparsgd.data.files import DataFileError, find_file, find_folder
from sparsgd.data.idx import read_idx

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "IDX_FILES",
    "MNIST_MEAN",
    "MNIST_STD",
    "load_fashion_mnist",
    "load_idx_pair",
    "load_mnist",
]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # over the 60,000 training images, pixels in [0, 1]
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
NUM_CLASSES = 10
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _remedy(name: str) -> str:
    return (
        f"Point data_dir at a folder holding the four standard {name} IDX files "
        "(plain or .gz), downloading intact copies if needed"
    )


def load_idx_pair(
    folder: Path, images_name: str, labels_name: str, remedy: str
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) uint8 and labels (N,) uint8 in 0..9, checked against each other."""
    images_path = find_file(folder, images_name, remedy)
    labels_path = find_file(folder, labels_name, remedy)
    images, labels = read_idx(images_path, remedy), read_idx(labels_path, remedy)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataFileError(
            images_path,
            f"expected uint8 images (N, H, W); got {images.dtype} {images.shape}",
            remedy,
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataFileError(
            labels_path, f"expected uint8 labels (N,); got {labels.dtype} {labels.shape}", remedy
        )
    if len(images) != len(labels):
        raise DataFileError(
            labels_path,
            f"holds {len(labels)} labels but {images_path.name} holds {len(images)} images",
            remedy,
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise DataFileError(
            labels_path, f"label {int(labels.max())} outside 0..{NUM_CLASSES - 1}", remedy
        )
    return images, labels


def _to_tensors(images: np.ndarray, labels: np.ndarray, mean: float, std: float) -> TensorDataset:
    x = torch.from_numpy(images.astype(np.float32) / 255.0)  # (N, H, W) in [0, 1]
    x = ((x - mean) / std).unsqueeze(1)  # (N, 1, H, W)
    return TensorDataset(x, torch.from_numpy(labels.astype(np.int64)))


def _load(
    name: str, data_dir: str | Path | None, mean: float, std: float, defaults: tuple[Path, ...] = ()
) -> DatasetBundle:
    remedy = _remedy(name)
    all_names = [n for pair in IDX_FILES.values() for n in pair]
    folder = find_folder(data_dir, name, all_names, remedy, defaults)
    splits = {
        split: _to_tensors(*load_idx_pair(folder, *names, remedy), mean, std)
        for split, names in IDX_FILES.items()
    }
    height, width = splits["train"].tensors[0].shape[2:]
    if splits["test"].tensors[0].shape[2:] != (height, width):
        raise DataFileError(
            folder / IDX_FILES["test"][0],
            f"test images are {tuple(splits['test'].tensors[0].shape[2:])}, "
            f"training images {(int(height), int(width))}",
            remedy,
        )
    return DatasetBundle(
        name=name,
        task="classification",
        train=splits["train"],
        test=splits["test"],
        num_classes=NUM_CLASSES,
        input_shape=(1, int(height), int(width)),
        source=str(folder),
    )


def load_mnist(data_dir: str | Path | None = None) -> DatasetBundle:
    """MNIST from ``data_dir`` (or ``$SPARSGD_DATA/mnist``)."""
    return _load("mnist", data_dir, MNIST_MEAN, MNIST_STD)


def load_fashion_mnist(data_dir: str | Path | None = None) -> DatasetBundle:
    """Fashion-MNIST from ``data_dir``, ``$SPARSGD_DATA/fashion-mnist`` or Debian's folder."""
    return _load(
        "fashion-mnist", data_dir, FASHION_MNIST_MEAN, FASHION_MNIST_STD, (DEBIAN_FASHION_MNIST,)
    )
