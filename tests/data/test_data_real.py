"""The real MNIST and Fashion-MNIST files of ../shared/data (or $SPARSGD_DATA): label counts
as published in that folder's README. Skipped, with the reason, where the folder is absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sparsgd.data import load_dataset

pytestmark = pytest.mark.data

# The normalisation constants are rounded to 4 decimals, so the normalised training pixels
# have mean 0 and std 1 only to about 1e-3.
NORMALISED_ATOL = 1e-3


def _folder_or_skip(root: Path, name: str) -> Path:
    folder = root / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (set SPARSGD_DATA or provide ../shared/data)")
    return folder


@pytest.mark.slow
def test_mnist_label_counts(shared_data: Path) -> None:
    bundle = load_dataset("mnist", _folder_or_skip(shared_data, "mnist"))
    train_counts = torch.bincount(bundle.train.tensors[1]).tolist()
    test_counts = torch.bincount(bundle.test.tensors[1]).tolist()
    assert (len(bundle.train), len(bundle.test)) == (60_000, 10_000)
    assert train_counts[:4] == [5923, 6742, 5958, 6131]
    assert test_counts[:4] == [980, 1135, 1032, 1010]
    assert sum(train_counts) == 60_000 and len(train_counts) == 10
    x = bundle.train.tensors[0]
    assert x.shape == (60_000, 1, 28, 28)
    assert abs(float(x.mean())) < NORMALISED_ATOL
    assert abs(float(x.std()) - 1.0) < NORMALISED_ATOL


@pytest.mark.slow
def test_fashion_mnist_label_counts(shared_data: Path) -> None:
    bundle = load_dataset("fashion-mnist", _folder_or_skip(shared_data, "fashion-mnist"))
    assert torch.bincount(bundle.train.tensors[1]).tolist() == [6000] * 10
    assert torch.bincount(bundle.test.tensors[1]).tolist() == [1000] * 10
    x = bundle.train.tensors[0]
    assert abs(float(x.mean())) < NORMALISED_ATOL
    assert abs(float(x.std()) - 1.0) < NORMALISED_ATOL
