"""The embedded digits and the seeded synthetic data sets."""

from __future__ import annotations

import math

import pytest
import torch

from sparsgd.data import load_dataset
from sparsgd.data.synthetic import BRANCHING

# DIGITS_MEAN / DIGITS_STD are over all 1,797 images and rounded to 4 decimals; the training
# split alone is a random 80 % of them, whose statistics differ by a few hundredths.
DIGITS_SPLIT_ATOL = 0.05


def test_digits_shapes_split_and_scaling() -> None:
    bundle = load_dataset("digits")
    x, y = bundle.train.tensors
    assert bundle.input_shape == (1, 8, 8) and bundle.num_classes == 10
    assert x.shape == (1437, 1, 8, 8) and len(bundle.test) == 360
    assert sorted(torch.unique(y).tolist()) == list(range(10))
    assert abs(float(x.mean())) < DIGITS_SPLIT_ATOL
    assert abs(float(x.std()) - 1.0) < DIGITS_SPLIT_ATOL
    again = load_dataset("digits")
    assert torch.equal(again.train.tensors[0], x) and torch.equal(
        again.test.tensors[1], bundle.test.tensors[1]
    )


def test_digits_read_directly_equal_scikit_learns_loader() -> None:
    """The bundled file read without importing scikit-learn gives its loader's arrays."""
    from sklearn.datasets import load_digits as sklearn_digits

    from sparsgd.data.digits import _read_digits

    pixels, labels = _read_digits()
    raw = sklearn_digits()
    assert pixels.dtype == raw.images.dtype and (pixels == raw.images).all()
    assert labels.dtype == raw.target.dtype and (labels == raw.target).all()


def test_digits_train_and_test_are_disjoint_and_complete() -> None:
    """The 1,797 digit images are pairwise distinct, so rows identify images."""
    bundle = load_dataset("digits")
    train = {tuple(row.tolist()) for row in bundle.train.tensors[0].flatten(1)}
    test = {tuple(row.tolist()) for row in bundle.test.tensors[0].flatten(1)}
    assert not train & test
    assert len(train | test) == 1797


def test_synthetic_sizes_and_seed() -> None:
    a = load_dataset("synthetic", num_train=100, num_test=30, num_features=5, num_classes=3, seed=1)
    assert a.train.tensors[0].shape == (100, 5) and len(a.test) == 30
    assert a.input_shape == (5,) and a.num_classes == 3
    assert set(a.train.tensors[1].tolist()) <= {0, 1, 2}
    b = load_dataset("synthetic", num_train=100, num_test=30, num_features=5, num_classes=3, seed=1)
    c = load_dataset("synthetic", num_train=100, num_test=30, num_features=5, num_classes=3, seed=2)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])


def test_synthetic_classes_are_learnable() -> None:
    """Nearest class centroid (estimated on train) beats chance clearly on test."""
    bundle = load_dataset(
        "synthetic", num_train=2000, num_test=500, num_features=32, num_classes=4, seed=0
    )
    x, y = bundle.train.tensors
    centroids = torch.stack([x[y == c].mean(0) for c in range(4)])
    tx, ty = bundle.test.tensors
    accuracy = float((torch.cdist(tx, centroids).argmin(1) == ty).float().mean())
    assert accuracy > 0.5  # chance is 0.25


def test_synthetic_lm_follows_its_chain() -> None:
    bundle = load_dataset("synthetic-lm", num_train=5000, num_test=500, vocab_size=20, seed=3)
    ids = bundle.train
    assert bundle.task == "language" and bundle.vocab_size == 20
    assert ids.shape == (5000,) and bundle.valid.shape == bundle.test.shape == (500,)
    assert int(ids.min()) >= 0 and int(ids.max()) < 20
    for token in range(20):
        successors = set(ids[1:][ids[:-1] == token].tolist())
        assert len(successors) <= BRANCHING
    # an empirical bigram entropy of at most log(BRANCHING): far below a uniform log(20)
    pairs = ids[:-1] * 20 + ids[1:]
    joint = torch.bincount(pairs, minlength=400).float().view(20, 20)
    conditional = joint / joint.sum(1, keepdim=True).clamp(min=1)
    entropy = -(joint / joint.sum() * conditional.clamp(min=1e-12).log()).sum()
    assert float(entropy) <= math.log(BRANCHING) + 1e-6


def test_synthetic_lm_max_tokens() -> None:
    bundle = load_dataset("synthetic-lm", max_tokens=300)
    assert bundle.train.numel() == bundle.test.numel() == 300


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_train": 0}, "num_train must be an integer >= 1; got 0"),
        ({"num_classes": 1}, "num_classes must be an integer >= 2; got 1"),
    ],
)
def test_synthetic_validation(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_dataset("synthetic", **kwargs)
