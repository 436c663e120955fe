"""Seeded synthetic data: a Gaussian classification problem and a Markov-chain token stream.

Classification (``synthetic``), all draws from one ``torch.Generator`` seeded with ``seed``:

    mu_c ~ N(0, SEPARATION^2 I_D)         c = 0 .. C-1, one mean per class
    y    ~ uniform over 0 .. C-1
    x    = mu_y + N(0, I_D)               (N, D) float32, input_shape (D,)

Language (``synthetic-lm``): a first-order Markov chain over V tokens in which every token has
BRANCHING successors drawn once (with repetition); the next token is one of them, uniformly.
A perfect model reaches perplexity at most BRANCHING, a unigram model about V, so learning
shows as the perplexity falling from about V towards BRANCHING.

The same seed gives the same data on every rank and every run.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from sparsgd.data.bundle import DatasetBundle

__all__ = [
    "BRANCHING",
    "SEPARATION",
    "SYNTHETIC_DEFAULTS",
    "load_synthetic",
    "load_synthetic_lm",
    "markov_tokens",
]

SEPARATION = 1.0  # std of the class means: classes overlap, so accuracy stays below 100 %
BRANCHING = 4  # successors per token in the synthetic language
SYNTHETIC_DEFAULTS = {
    "num_train": 2048,
    "num_test": 512,
    "num_features": 32,
    "num_classes": 4,
    "vocab_size": 64,
    "num_train_tokens": 20_000,
    "num_test_tokens": 4_000,
}


def _check_size(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return value


def load_synthetic(
    num_train: int, num_test: int, num_features: int, num_classes: int, seed: int
) -> DatasetBundle:
    """Gaussian classes (see the module docstring) as a classification bundle."""
    _check_size(num_train, "num_train")
    _check_size(num_test, "num_test")
    _check_size(num_features, "num_features")
    _check_size(num_classes, "num_classes", minimum=2)
    generator = torch.Generator().manual_seed(seed)
    means = SEPARATION * torch.randn(num_classes, num_features, generator=generator)  # (C, D)

    def draw(n: int) -> TensorDataset:
        y = torch.randint(num_classes, (n,), generator=generator)  # (n,)
        x = means[y] + torch.randn(n, num_features, generator=generator)  # (n, D)
        return TensorDataset(x, y)

    return DatasetBundle(
        name="synthetic",
        task="classification",
        train=draw(num_train),
        test=draw(num_test),
        num_classes=num_classes,
        input_shape=(num_features,),
        source=f"generated (seed {seed})",
    )


def markov_tokens(successors: Tensor, length: int, generator: torch.Generator) -> Tensor:
    """``(length,)`` int64 walk on the chain whose token ``v`` may be followed by
    ``successors[v]`` (``(V, BRANCHING)``), starting from a uniform token."""
    vocab, branching = successors.shape
    table = successors.tolist()
    choices = torch.randint(branching, (length,), generator=generator).tolist()
    token = int(torch.randint(vocab, (1,), generator=generator))
    walk = []
    for choice in choices:
        walk.append(token)
        token = table[token][choice]
    return torch.tensor(walk, dtype=torch.int64)


def load_synthetic_lm(
    num_train_tokens: int, num_test_tokens: int, vocab_size: int, seed: int
) -> DatasetBundle:
    """Markov-chain token streams (train, valid and test of the same chain)."""
    _check_size(num_train_tokens, "num_train", minimum=2)
    _check_size(num_test_tokens, "num_test", minimum=2)
    _check_size(vocab_size, "vocab_size", minimum=2)
    generator = torch.Generator().manual_seed(seed)
    successors = torch.randint(vocab_size, (vocab_size, BRANCHING), generator=generator)
    return DatasetBundle(
        name="synthetic-lm",
        task="language",
        train=markov_tokens(successors, num_train_tokens, generator),
        valid=markov_tokens(successors, num_test_tokens, generator),
        test=markov_tokens(successors, num_test_tokens, generator),
        vocab_size=vocab_size,
        source=f"generated (seed {seed})",
    )
