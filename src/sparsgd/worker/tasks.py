"""The task of a worker: what one step computes and how the test set is scored, per kind of data.

Classification (accuracy):

    loss   = cross_entropy(model(x), y)                      # mean over the batch
    scores = (sum of per-sample losses, correct, samples)    # over this rank's part of test

Language modelling (perplexity), truncated BPTT with the hidden state carried between windows
of one epoch and cut from the graph (``detach``) at each window:

    logits, h = model(inputs, h)                             # (l, B, V)
    loss      = cross_entropy(logits, targets)               # mean over l * B tokens
    scores    = (sum of per-token losses, 0, tokens)         # perplexity = exp(sum / tokens)

The test set is split between ranks so that the sums add up to the whole set whatever P is:
samples in P contiguous parts; the test stream cut once into ``EVAL_COLUMNS`` columns (each an
independent text with its own hidden state) of which rank r reads columns r, r + P, ...
The synchronous trainer all-reduces the three sums (sparsgd.sync.trainer); the
parameter server scores the whole test set in one process with :func:`classification_scores`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from sparsgd.data import batchify

__all__ = [
    "EVAL_BATCH",
    "EVAL_COLUMNS",
    "ClassificationTask",
    "LanguageTask",
    "Scores",
    "classification_loss",
    "classification_scores",
]

EVAL_BATCH = 1000  # test samples per forward pass (memory only; results do not depend on it)
EVAL_COLUMNS = 10  # test stream columns, the usual evaluation batch of PTB LSTM code

Scores = tuple[float, int, int]  # (loss sum, correct, count)


def classification_loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of ``model(x)`` (b, C) against the labels ``y`` (b,)."""
    return F.cross_entropy(model(x), y)


@torch.no_grad()
def classification_scores(
    model: nn.Module, x: Tensor, y: Tensor, device: torch.device | None = None
) -> Scores:
    """``(sum of per-sample losses, correct, samples)`` over the labelled set ``(x, y)``."""
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), EVAL_BATCH):
        xb = x[start : start + EVAL_BATCH].to(device)
        yb = y[start : start + EVAL_BATCH].to(device)
        logits = model(xb)  # (b, C)
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(dim=1) == yb).sum())
    return loss_sum, correct, len(y)


class ClassificationTask:
    """Cross-entropy on labelled samples; scored by accuracy."""

    metric = "test_accuracy"

    def __init__(self, test: TensorDataset, rank: int, world: int, device: torch.device):
        x, y = test.tensors
        bounds = torch.linspace(0, len(y), world + 1).round().long().tolist()
        self.x_test = x[bounds[rank] : bounds[rank + 1]]  # this rank's contiguous part
        self.y_test = y[bounds[rank] : bounds[rank + 1]]
        self.device = device

    def start_epoch(self) -> None:
        """Nothing carries over between batches."""

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = (t.to(self.device) for t in batch)
        return classification_loss(model, x, y)

    def scores(self, model: nn.Module) -> Scores:
        return classification_scores(model, self.x_test, self.y_test, self.device)

    @staticmethod
    def metrics(loss_sum: float, correct: int, count: int) -> dict[str, float]:
        return {"test_loss": loss_sum / count, "test_accuracy": correct / count}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """No state."""


class LanguageTask:
    """Next-token cross-entropy with truncated BPTT; scored by perplexity."""

    metric = "test_perplexity"

    def __init__(self, test: Tensor, rank: int, world: int, bptt: int, device: torch.device):
        columns = batchify(test, EVAL_COLUMNS)  # (T, EVAL_COLUMNS)
        self.test = columns[:, rank::world]  # (T, this rank's columns); may be empty
        self.bptt = bptt
        self.device = device
        self.hidden: tuple[Tensor, Tensor] | None = None

    def start_epoch(self) -> None:
        self.hidden = None  # each epoch reads the columns from their start again

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        inputs, targets = (t.to(self.device) for t in batch)  # (l, B)
        hidden = None if self.hidden is None else model.detach_hidden(self.hidden)
        logits, self.hidden = model(inputs, hidden)  # (l, B, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    @torch.no_grad()
    def scores(self, model: nn.Module) -> Scores:
        if self.test.shape[1] == 0:
            return 0.0, 0, 0
        data = self.test.to(self.device)
        hidden, loss_sum, count = None, 0.0, 0
        for start in range(0, data.shape[0] - 1, self.bptt):
            inputs = data[start : start + self.bptt]  # (l, b)
            targets = data[start + 1 : start + 1 + self.bptt]
            inputs = inputs[: targets.shape[0]]
            logits, hidden = model(inputs, hidden)
            flat = logits.reshape(-1, logits.shape[-1])
            loss_sum += float(F.cross_entropy(flat, targets.reshape(-1), reduction="sum"))
            count += targets.numel()
        return loss_sum, 0, count

    @staticmethod
    def metrics(loss_sum: float, correct: int, count: int) -> dict[str, float]:
        mean = loss_sum / count
        return {"test_loss": mean, "test_perplexity": float(torch.tensor(mean).exp())}

    def state_dict(self) -> dict[str, Any]:
        if self.hidden is None:
            return {"hidden": None}
        return {"hidden": [t.detach().cpu() for t in self.hidden]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        hidden = state["hidden"]
        self.hidden = (
            None if hidden is None else (hidden[0].to(self.device), hidden[1].to(self.device))
        )
