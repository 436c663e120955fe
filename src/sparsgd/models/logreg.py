"""Multinomial logistic regression: one linear layer on the flattened input.

    x: (B, *input_shape)  ->  flatten  ->  z = W x + b : (B, num_classes) logits

Softmax and the cross-entropy live in the loss (``torch.nn.functional.cross_entropy``), so
the model returns logits. Parameters: ``D * num_classes + num_classes`` with ``D`` the
product of ``input_shape`` (7,850 for MNIST).
"""

from __future__ import annotations

from torch import Tensor, nn

from sparsgd.models.spec import ModelSpec

__all__ = ["LogisticRegression", "build_logreg"]


class LogisticRegression(nn.Module):
    """``z = W flatten(x) + b``."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(num_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(1))  # (B, D) -> (B, num_classes)


def build_logreg(spec: ModelSpec) -> LogisticRegression:
    """Any input shape; needs ``input_shape`` and ``num_classes``."""
    return LogisticRegression(spec.need_features("logreg"), spec.need_num_classes("logreg"))
