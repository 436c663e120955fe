"""FNN-3: the three-layer fully connected network of Shi et al. (IJCAI 2019) for MNIST.

    x: (B, *input_shape) -> flatten (B, D)
      -> Linear(D, H) -> ReLU -> Linear(H, H) -> ReLU -> Linear(H, num_classes)

Three weight layers, two hidden layers of ``H`` units (``H = 200`` by default,
``spec.hidden_size`` overrides it). Parameters: ``D H + H + H H + H + H C + C``; for MNIST
(D = 784, C = 10) that is 199,210.
"""

from __future__ import annotations

from torch import Tensor, nn

from sparsgd.models.spec import ModelSpec

__all__ = ["FNN3", "FNN3_HIDDEN", "build_fnn3"]

FNN3_HIDDEN = 200  # units per hidden layer (gives the paper's 199,210 parameters on MNIST)


class FNN3(nn.Module):
    """Multi-layer perceptron with two hidden ReLU layers of ``hidden`` units."""

    def __init__(self, num_features: int, num_classes: int, hidden: int = FNN3_HIDDEN) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(num_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x.flatten(1))  # (B, D) -> (B, num_classes)


def build_fnn3(spec: ModelSpec) -> FNN3:
    """Any input shape; needs ``input_shape`` and ``num_classes``; ``hidden_size`` optional."""
    return FNN3(
        spec.need_features("fnn3"),
        spec.need_num_classes("fnn3"),
        spec.hidden_size or FNN3_HIDDEN,
    )
