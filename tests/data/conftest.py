"""Fixtures for the data tests: the shared real data folder, and writers of small files in
the standard formats (IDX, CIFAR-10 python batches), written here from the format's
description and never copied from the loaders under test."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
IDX_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}


def shared_data_root() -> Path:
    """``$SPARSGD_DATA`` if set, else ``../shared/data`` from the repository root."""
    env = os.environ.get("SPARSGD_DATA")
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture
def shared_data() -> Path:
    return shared_data_root()


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding: 0, 0, type code, ndim, big-endian int32 sizes, big-endian data."""
    big = array.astype(array.dtype.newbyteorder(">"))
    code = IDX_TYPE_CODES[big.dtype]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}i", *array.shape)
    return header + big.tobytes()


def write_file(path: Path, data: bytes, compress: bool) -> Path:
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def write_idx() -> Callable[[Path, np.ndarray, bool], Path]:
    return lambda path, array, compress=False: write_file(path, idx_bytes(array), compress)


def mnist_like(n_train: int, n_test: int, seed: int) -> dict[str, np.ndarray]:
    """Random 28x28 uint8 images and labels 0..9 under the four standard file names."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        arrays[f"{prefix}-images-idx3-ubyte"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{prefix}-labels-idx1-ubyte"] = rng.integers(0, 10, n, dtype=np.uint8)
    return arrays


@pytest.fixture
def mnist_folder(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A folder with small gzip-compressed MNIST-format files (12 train, 5 test images)."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    arrays = mnist_like(12, 5, seed=0)
    for name, array in arrays.items():
        write_file(folder / name, idx_bytes(array), compress=True)
    return folder, arrays


def cifar_batch(n: int, seed: int) -> dict[bytes, object]:
    """A dict shaped like one CIFAR-10 python batch (Python 2 pickles had these four keys)."""
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"test batch",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


@pytest.fixture
def write_cifar() -> Callable[[Path, int, int], dict[str, dict[bytes, object]]]:
    """Writes data_batch_1..5 and test_batch with ``n`` images each into ``folder``."""

    def write(folder: Path, n: int, protocol: int = 2) -> dict[str, dict[bytes, object]]:
        folder.mkdir(parents=True, exist_ok=True)
        batches = {f"data_batch_{i}": cifar_batch(n, seed=i) for i in range(1, 6)}
        batches["test_batch"] = cifar_batch(n, seed=99)
        for name, batch in batches.items():
            (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        return batches

    return write
