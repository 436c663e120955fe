"""The LSTM language model: shapes, parameter counts, weight tying, hidden-state carrying."""

from __future__ import annotations

import pytest
import torch

from sparsgd.models import LSTMLanguageModel, ModelSpec, build_model, count_parameters
from sparsgd.models.lstm import FULL_HIDDEN, REDUCED_HIDDEN

# Running T steps at once or in two windows with the hidden state carried does the same
# float32 operations; cuDNN-free CPU kernels may block differently: allow a few ulps.
CARRY_ATOL = 1e-5


def lstm_count(vocab: int, hidden: int, tied: bool) -> int:
    """Embedding + 2 LSTM layers (4 gates, input and recurrent weights, two biases) + decoder."""
    embedding = vocab * hidden
    layers = 2 * (4 * hidden * (hidden + hidden) + 2 * 4 * hidden)
    decoder = (0 if tied else hidden * vocab) + vocab
    return embedding + layers + decoder


def test_forward_shapes_and_init_hidden() -> None:
    model = build_model("lstm", ModelSpec(vocab_size=100, hidden_size=24), seed=0)
    assert isinstance(model, LSTMLanguageModel)
    tokens = torch.randint(100, (7, 3))
    logits, (h, c) = model(tokens, model.init_hidden(3))
    assert logits.shape == (7, 3, 100)
    assert h.shape == c.shape == (2, 3, 24)
    zeros = model.init_hidden(5)
    assert all(t.shape == (2, 5, 24) and not t.any() for t in zeros)


@pytest.mark.parametrize("tied", [False, True])
def test_reduced_parameter_count(tied: bool) -> None:
    model = build_model("lstm", ModelSpec(vocab_size=10_000, reduced=True, tie_weights=tied))
    assert model.hidden_size == REDUCED_HIDDEN
    assert count_parameters(model) == lstm_count(10_000, REDUCED_HIDDEN, tied)
    assert (model.decoder.weight is model.embedding.weight) == tied


def test_full_size_is_the_papers_66m() -> None:
    """gTop-k papers' LSTM-PTB: 2 x 1500 units, untied, 66,034,000 parameters."""
    model = build_model("lstm", ModelSpec(vocab_size=10_000))
    assert model.hidden_size == FULL_HIDDEN
    assert count_parameters(model) == lstm_count(10_000, FULL_HIDDEN, False) == 66_034_000


def test_carrying_hidden_equals_one_long_sequence() -> None:
    model = build_model("lstm", ModelSpec(vocab_size=30, hidden_size=8, dropout=0.0), seed=1)
    model.eval()
    tokens = torch.randint(30, (10, 2), generator=torch.Generator().manual_seed(3))
    whole, _ = model(tokens)
    first, hidden = model(tokens[:4])
    second, _ = model(tokens[4:], model.detach_hidden(hidden))
    torch.testing.assert_close(torch.cat([first, second]), whole, atol=CARRY_ATOL, rtol=0)


def test_detach_hidden_cuts_the_graph() -> None:
    model = build_model("lstm", ModelSpec(vocab_size=30, hidden_size=8), seed=1)
    _, hidden = model(torch.randint(30, (3, 2)))
    assert hidden[0].requires_grad
    assert not any(t.requires_grad for t in model.detach_hidden(hidden))


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"lstm needs spec\.vocab_size"):
        build_model("lstm", ModelSpec(input_shape=(1, 8, 8), num_classes=10))
    model = build_model("lstm", ModelSpec(vocab_size=30, hidden_size=8))
    with pytest.raises(ValueError, match=r"tokens must be \(T, B\); got shape \(5,\)"):
        model(torch.zeros(5, dtype=torch.long))
