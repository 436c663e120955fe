"""IDX parsing and the MNIST / Fashion-MNIST loaders on small files written by the test."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsgd.data import DataFileError, load_dataset
from sparsgd.data import mnist as mnist_module
from sparsgd.data.idx import read_idx
from sparsgd.data.mnist import MNIST_MEAN, MNIST_STD

# The loader divides by 255 and normalises in float32: one rounding step per operation.
PIXEL_ATOL = 1e-5


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-5, 0, 70000], dtype=">i4"),
        np.linspace(-1, 1, 6, dtype=">f4").reshape(3, 2),
    ],
    ids=["uint8-3d", "int32-1d", "float32-2d"],
)
def test_round_trip(tmp_path: Path, write_idx, array: np.ndarray, compress: bool) -> None:
    path = write_idx(tmp_path / "a-idx", array, compress)
    read = read_idx(path)
    assert read.shape == array.shape
    np.testing.assert_array_equal(read, array)


def _corrupt(tmp_path: Path, write_idx, how: str) -> Path:
    good = write_idx(tmp_path / "good", np.zeros((4, 2, 2), dtype=np.uint8))
    data = good.read_bytes()
    bad = tmp_path / f"bad-{how}"
    variants = {
        "magic": b"\x01\x02" + data[2:],
        "type": data[:2] + b"\x07" + data[3:],
        "short-header": data[:6],
        "truncated": data[:-3],
        "too-long": data + b"\x00",
    }
    bad.write_bytes(variants[how])
    return bad


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("magic", "bad magic number 0x0102"),
        ("type", "bad magic number"),
        ("short-header", "truncated inside the header"),
        ("truncated", r"truncated: header announces shape \(4, 2, 2\)"),
        ("too-long", "longer than its header says"),
    ],
)
def test_corrupt_files_name_the_file(tmp_path: Path, write_idx, how: str, message: str) -> None:
    bad = _corrupt(tmp_path, write_idx, how)
    with pytest.raises(DataFileError, match=message) as info:
        read_idx(bad)
    assert str(bad) in str(info.value)
    assert info.value.path == bad


def test_truncated_gzip_names_the_file(tmp_path: Path, write_idx) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / "x-idx", noise, True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataFileError, match="corrupt or truncated gzip") as info:
        read_idx(path)
    assert info.value.path == path


def test_mnist_loader_shapes_values_and_labels(mnist_folder) -> None:
    folder, arrays = mnist_folder
    bundle = load_dataset("mnist", folder)
    x, y = bundle.train.tensors
    assert bundle.task == "classification" and bundle.num_classes == 10
    assert bundle.input_shape == (1, 28, 28)
    assert x.shape == (12, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and len(bundle.test) == 5
    assert torch.equal(y, torch.from_numpy(arrays["train-labels-idx1-ubyte"].astype(np.int64)))
    pixels = torch.from_numpy(arrays["train-images-idx3-ubyte"].astype(np.float32))
    expected = (pixels / 255 - MNIST_MEAN) / MNIST_STD
    torch.testing.assert_close(x[:, 0], expected, atol=PIXEL_ATOL, rtol=0)


def test_plain_files_and_parent_folder(mnist_folder) -> None:
    """Uncompressed files are read too, and data_dir may be the parent of mnist/."""
    folder, _ = mnist_folder
    for packed in folder.glob("*.gz"):
        packed.with_suffix("").write_bytes(gzip.decompress(packed.read_bytes()))
        packed.unlink()
    assert load_dataset("mnist", folder.parent).num_train == 12


def test_environment_variable_and_debian_default(mnist_folder, monkeypatch) -> None:
    folder, _ = mnist_folder
    monkeypatch.setenv("SPARSGD_DATA", str(folder.parent))
    assert load_dataset("mnist").num_train == 12
    monkeypatch.delenv("SPARSGD_DATA")
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_MNIST", folder)
    bundle = load_dataset("fashion-mnist")
    assert bundle.num_train == 12 and bundle.source == str(folder)


def test_missing_file_is_named(mnist_folder) -> None:
    folder, _ = mnist_folder
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataFileError, match=r"file missing .*Point data_dir") as info:
        load_dataset("mnist", folder)
    assert info.value.path == folder / "t10k-labels-idx1-ubyte"


def test_no_folder_at_all(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SPARSGD_DATA", raising=False)
    with pytest.raises(DataFileError, match="no data_dir given"):
        load_dataset("mnist")
    with pytest.raises(DataFileError, match="data_dir is not a folder"):
        load_dataset("mnist", tmp_path / "nowhere")


def test_label_count_mismatch(mnist_folder, write_idx) -> None:
    folder, _ = mnist_folder
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(11, dtype=np.uint8), True)
    with pytest.raises(
        DataFileError, match=r"holds 11 labels but train-images-idx3-ubyte\.gz holds 12 images"
    ):
        load_dataset("mnist", folder)


def test_label_out_of_range_and_wrong_rank(mnist_folder, write_idx) -> None:
    folder, _ = mnist_folder
    labels = np.full(12, 10, dtype=np.uint8)
    write_idx(folder / "train-labels-idx1-ubyte", labels, True)
    with pytest.raises(DataFileError, match=r"label 10 outside 0\.\.9"):
        load_dataset("mnist", folder)
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros((12, 1), dtype=np.uint8), True)
    with pytest.raises(DataFileError, match=r"expected uint8 labels \(N,\)"):
        load_dataset("mnist", folder)


def test_images_gzip_is_checked_too(mnist_folder) -> None:
    folder, _ = mnist_folder
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 5))
    with pytest.raises(DataFileError, match="truncated inside the header") as info:
        load_dataset("mnist", folder)
    assert info.value.path == path
