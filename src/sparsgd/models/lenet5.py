"""LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, defined on 32x32 images.

    x: (B, C, H, W)
      -> pad to 32x32 (centred zeros) when H or W < 32         # MNIST 28x28: 2 px per side
      -> Conv(C, 6, 5) -> ReLU -> MaxPool 2     (B, 6, 14, 14)
      -> Conv(6, 16, 5) -> ReLU -> MaxPool 2    (B, 16, 5, 5)
      -> AdaptiveAvgPool (5, 5)                 # identity at 32x32; only larger inputs shrink
      -> Linear(400, 120) -> ReLU -> Linear(120, 84) -> ReLU -> Linear(84, num_classes)

Other input sizes: the architecture's fixed 5x5 feature map needs 32x32 inputs, so smaller
images (MNIST 28x28, sklearn digits 8x8) are zero-padded around the centre, which for 28x28
is exactly the usual ``padding=2`` of the first convolution, and larger images are average
pooled to 5x5 before the classifier. Parameters: 61,706 for one channel and 10 classes.
"""

from __future__ import annotations

from torch import Tensor, nn

from sparsgd.models.padding import pad_to
from sparsgd.models.spec import ModelSpec

__all__ = ["LENET5_SIZE", "LeNet5", "build_lenet5"]

LENET5_SIZE = 32  # the input side length LeNet-5's layer sizes are defined for


class LeNet5(nn.Module):
    """LeNet-5 for ``channels x height x width`` images (see the module docstring)."""

    def __init__(self, channels: int, height: int, width: int, num_classes: int) -> None:
        super().__init__()
        self.pad = pad_to(height, width, LENET5_SIZE)
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d((5, 5)),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(self.pad(x))  # (B, 16, 5, 5)
        return self.classifier(h.flatten(1))  # (B, num_classes)


def build_lenet5(spec: ModelSpec) -> LeNet5:
    """Needs an image ``input_shape = (C, H, W)`` and ``num_classes``."""
    channels, height, width = spec.need_image("lenet5")
    return LeNet5(channels, height, width, spec.need_num_classes("lenet5"))
