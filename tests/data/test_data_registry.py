"""The registry's errors and the bundle's own checks."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from sparsgd.data import DATASETS, DatasetBundle, load_dataset


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"dataset must be one of \[.*'mnist'.*\]; got 'mnsit'"):
        load_dataset("mnsit")


def test_expected_names() -> None:
    expected = {"mnist", "fashion-mnist", "cifar10", "ptb", "digits", "synthetic", "synthetic-lm"}
    expected.add("npz")
    assert set(DATASETS) == expected


def test_unused_option_is_refused() -> None:
    with pytest.raises(ValueError, match="digits does not use data_dir; got data_dir='/x'"):
        load_dataset("digits", "/x")
    with pytest.raises(ValueError, match="mnist does not use max_tokens"):
        load_dataset("mnist", "/x", max_tokens=10)


def test_seed_is_accepted_everywhere() -> None:
    assert load_dataset("digits", seed=5).num_train == 1437


def test_bundle_checks_its_splits() -> None:
    ids = torch.arange(10)
    samples = TensorDataset(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="train of a language data set must be a Tensor"):
        DatasetBundle("x", "language", train=samples, test=ids, vocab_size=10)
    with pytest.raises(
        TypeError, match="test of a classification data set must be a TensorDataset"
    ):
        DatasetBundle("x", "classification", samples, ids, num_classes=2, input_shape=(2,))
    with pytest.raises(ValueError, match="task must be one of"):
        DatasetBundle("x", "regression", samples, samples)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs num_classes and input_shape"):
        DatasetBundle("x", "classification", samples, samples)


def test_describe_is_json_ready() -> None:
    info = load_dataset("synthetic", num_train=10, num_test=4).describe()
    assert info["num_train"] == 10 and info["num_test"] == 4 and info["input_shape"] == [32]
