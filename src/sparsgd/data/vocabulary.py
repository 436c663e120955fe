"""A word vocabulary for language modelling: words to ids and back.

    tokens(line) = line.split() + [EOS]             # one end-of-sentence token per sentence
    ids          = most frequent words first, ties in alphabetical order, at most max_size
    unknown word -> id of UNK

Blank lines hold no sentence and give no tokens. Built from the training text only, so that
validation and test words unseen in training map to ``UNK`` (PTB's text already writes rare
words as ``<unk>``, so its 9,999 distinct training words plus ``<eos>`` make exactly 10,000).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["EOS", "UNK", "Vocabulary", "sentence_tokens"]

EOS = "<eos>"
UNK = "<unk>"


def sentence_tokens(text: str) -> Iterator[str]:
    """The words of ``text``, each non-blank line followed by :data:`EOS`."""
    for line in text.splitlines():
        words = line.split()
        if words:
            yield from words
            yield EOS


@dataclass(frozen=True)
class Vocabulary:
    """``words[i]`` is the word of id ``i``; ``UNK`` and ``EOS`` are always present."""

    words: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {word: i for i, word in enumerate(self.words)}
        if len(index) != len(self.words):
            raise ValueError("words must be distinct")
        for special in (UNK, EOS):
            if special not in index:
                raise ValueError(f"a vocabulary must contain {special!r}")
        object.__setattr__(self, "index", index)

    @classmethod
    def build(cls, text: str, max_size: int) -> Vocabulary:
        """The ``max_size`` most frequent tokens of ``text`` (``UNK`` and ``EOS`` included)."""
        if max_size < 2:
            raise ValueError(f"max_size must be >= 2 (room for {UNK} and {EOS}); got {max_size}")
        counts = Counter(sentence_tokens(text))
        specials = [UNK, EOS]
        ranked = sorted((w for w in counts if w not in specials), key=lambda w: (-counts[w], w))
        kept = set(ranked[: max_size - len(specials)]) | set(specials)
        words = sorted(kept, key=lambda w: (-counts.get(w, 0), w))
        return cls(tuple(words))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> Tensor:
        """``(N,)`` int64 ids of ``sentence_tokens(text)``, unknown words as ``UNK``."""
        unk = self.index[UNK]
        ids = [self.index.get(word, unk) for word in sentence_tokens(text)]
        return torch.tensor(ids, dtype=torch.int64)

    def decode(self, ids: Tensor) -> list[str]:
        """The words of a 1-D id tensor."""
        return [self.words[i] for i in ids.tolist()]
