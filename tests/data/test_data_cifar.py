"""The CIFAR-10 loader on small batches in the standard python-pickle format, written here."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsgd.data import DataFileError, load_dataset
from sparsgd.data.cifar10 import CIFAR10_MEAN, CIFAR10_STD, read_cifar_batch

# uint8 -> [0, 1] -> normalised in float32: one rounding per operation.
PIXEL_ATOL = 1e-5
N = 4  # images per batch file


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_loads_train_and_test(tmp_path: Path, write_cifar, protocol: int) -> None:
    batches = write_cifar(tmp_path / "cifar-10-batches-py", N, protocol)
    bundle = load_dataset("cifar10", tmp_path)  # the parent folder is enough
    x, y = bundle.train.tensors
    assert x.shape == (5 * N, 3, 32, 32) and x.dtype == torch.float32
    assert bundle.input_shape == (3, 32, 32) and bundle.num_classes == 10
    assert len(bundle.test) == N
    train_labels = [label for i in range(1, 6) for label in batches[f"data_batch_{i}"][b"labels"]]
    assert y.tolist() == train_labels
    assert bundle.test.tensors[1].tolist() == batches["test_batch"][b"labels"]


def test_pixel_layout_and_normalisation(tmp_path: Path, write_cifar) -> None:
    """Row = 1024 red, 1024 green, 1024 blue values, each a 32x32 image in row-major order."""
    folder = tmp_path / "cifar-10-batches-py"
    batches = write_cifar(folder, N)
    raw = batches["data_batch_1"][b"data"]
    bundle = load_dataset("cifar10", folder)
    x = bundle.train.tensors[0]
    for channel in range(3):
        row, col = 5, 17  # pixel (5, 17) sits at offset channel * 1024 + 5 * 32 + 17
        value = raw[2, channel * 1024 + row * 32 + col] / 255.0
        expected = (value - CIFAR10_MEAN[channel]) / CIFAR10_STD[channel]
        assert float(x[2, channel, row, col]) == pytest.approx(expected, abs=PIXEL_ATOL)


def test_missing_batch_is_named(tmp_path: Path, write_cifar) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, N)
    (folder / "test_batch").unlink()
    with pytest.raises(DataFileError, match=r"cifar-10-python\.tar\.gz") as info:
        load_dataset("cifar10", folder)
    assert info.value.path == folder / "test_batch"


def _write(path: Path, obj: object) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return path


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({b"labels": [1]}, 'expected a dict with keys b"data" and b"labels"'),
        (
            {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},
            r"b'data' must be \(N, 3072\) uint8",
        ),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "b'labels' must hold 2"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, r"labels must be in 0\.\.9"),
    ],
)
def test_malformed_batches(tmp_path: Path, batch: dict, message: str) -> None:
    path = _write(tmp_path / "data_batch_1", batch)
    with pytest.raises(DataFileError, match=message) as info:
        read_cifar_batch(path)
    assert info.value.path == path


def test_truncated_pickle(tmp_path: Path, write_cifar) -> None:
    folder = tmp_path / "b"
    write_cifar(folder, N)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataFileError, match="not a readable CIFAR-10 batch") as info:
        load_dataset("cifar10", folder)
    assert info.value.path == path


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_code_in_a_pickle_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "data_batch_1", {b"data": _Exploit(), b"labels": []})
    with pytest.raises(DataFileError, match="refusing to load"):
        read_cifar_batch(path)
