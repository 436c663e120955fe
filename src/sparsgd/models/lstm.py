"""Two-layer LSTM language model (Zaremba et al. 2014), as trained on PTB in the gTop-k papers.

    tokens: (T, B) int64 ids
      -> Embedding(V, H) -> dropout                      (T, B, H)
      -> LSTM(H, H, layers=2, dropout between layers)     (T, B, H), hidden (h, c)
      -> dropout -> Linear(H, V)                          logits (T, B, V)

    hidden = (h, c), each (layers, B, H); init_hidden(B) gives zeros. Truncated BPTT carries
    hidden from one window to the next, cut from the graph with ``detach_hidden``.

Sizes: the full setting is the papers' 2 x 1500 units, untied (66,034,000 parameters for the
10,000-word PTB vocabulary; Zaremba's "large", dropout 0.65); ``reduced`` is Zaremba's
"small" 2 x 200 units without dropout (4,653,200 parameters) for CPU runs.
``spec.hidden_size`` and ``spec.dropout`` override either. ``tie_weights`` makes the decoder
share the embedding matrix (Press & Wolf 2017), which removes ``V H`` parameters.

Initialisation: embedding and decoder weights uniform in [-INIT_RANGE, INIT_RANGE], decoder
bias 0, LSTM weights PyTorch's default uniform(-1/sqrt(H), 1/sqrt(H)).
"""

from __future__ import annotations

from torch import Tensor, nn

from sparsgd.models.spec import ModelSpec

__all__ = [
    "FULL_DROPOUT",
    "FULL_HIDDEN",
    "INIT_RANGE",
    "LSTM_LAYERS",
    "REDUCED_DROPOUT",
    "REDUCED_HIDDEN",
    "Hidden",
    "LSTMLanguageModel",
    "build_lstm",
]

LSTM_LAYERS = 2
FULL_HIDDEN = 1500  # units per layer in the gTop-k papers' LSTM-PTB (66M parameters)
FULL_DROPOUT = 0.65  # Zaremba et al.'s large model
REDUCED_HIDDEN = 200  # Zaremba et al.'s small model
REDUCED_DROPOUT = 0.0
INIT_RANGE = 0.1  # half-width of the uniform init of embedding and decoder weights

Hidden = tuple[Tensor, Tensor]  # (h, c), each (layers, B, H)


class LSTMLanguageModel(nn.Module):
    """Embedding -> 2-layer LSTM -> linear decoder over the vocabulary."""

    def __init__(
        self, vocab_size: int, hidden_size: int, dropout: float, tie_weights: bool = False
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = LSTM_LAYERS
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers=LSTM_LAYERS, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        nn.init.uniform_(self.embedding.weight, -INIT_RANGE, INIT_RANGE)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        else:
            nn.init.uniform_(self.decoder.weight, -INIT_RANGE, INIT_RANGE)

    def init_hidden(self, batch: int) -> Hidden:
        """Zero ``(h, c)`` for ``batch`` sequences, on the model's device and dtype."""
        weight = self.decoder.weight
        shape = (self.num_layers, batch, self.hidden_size)
        return weight.new_zeros(shape), weight.new_zeros(shape)

    @staticmethod
    def detach_hidden(hidden: Hidden) -> Hidden:
        """The same state cut from the autograd graph (truncated BPTT)."""
        return hidden[0].detach(), hidden[1].detach()

    def forward(self, tokens: Tensor, hidden: Hidden | None = None) -> tuple[Tensor, Hidden]:
        """``tokens (T, B)`` -> ``(logits (T, B, V), hidden)``; ``hidden=None`` starts at 0."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (T, B); got shape {tuple(tokens.shape)}")
        if hidden is None:
            hidden = self.init_hidden(tokens.shape[1])
        emb = self.drop(self.embedding(tokens))  # (T, B, H)
        out, hidden = self.lstm(emb, hidden)  # (T, B, H)
        return self.decoder(self.drop(out)), hidden  # (T, B, V)


def build_lstm(spec: ModelSpec) -> LSTMLanguageModel:
    """Needs ``vocab_size``; ``reduced``, ``hidden_size``, ``dropout``, ``tie_weights`` optional."""
    hidden = spec.hidden_size or (REDUCED_HIDDEN if spec.reduced else FULL_HIDDEN)
    default_dropout = REDUCED_DROPOUT if spec.reduced else FULL_DROPOUT
    dropout = default_dropout if spec.dropout is None else spec.dropout
    return LSTMLanguageModel(spec.need_vocab_size("lstm"), hidden, dropout, spec.tie_weights)
