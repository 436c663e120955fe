"""VGG-16 with batch norm in its CIFAR-10 form (Simonyan & Zisserman 2015), ~14.7M parameters.

    x: (B, C, H, W)
      -> pad to 32x32 (centred zeros) when H or W < 32     # 28x28 MNIST, 8x8 digits
      -> 13 x [Conv3x3 -> BN -> ReLU] with 5 MaxPool 2 between the groups:
         64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M     (B, 512, 1, 1)
      -> AdaptiveAvgPool 1 (identity at 32x32) -> Linear(512, num_classes)

The CIFAR form replaces ImageNet VGG's three 4096-wide fully connected layers by one linear
layer on the 512 features, as in the gTop-k papers' VGG-16 on CIFAR-10 (14,728,266
parameters for 3x32x32 and 10 classes). Five halvings need at least 32x32, so smaller
images are zero-padded to 32x32; larger ones are average pooled after the last group.
"""

from __future__ import annotations

from torch import Tensor, nn

from sparsgd.models.padding import pad_to
from sparsgd.models.spec import ModelSpec

__all__ = ["VGG16", "VGG16_LAYERS", "VGG16_SIZE", "build_vgg16"]

POOL = 0  # marks a 2x2 max pool in VGG16_LAYERS
VGG16_LAYERS = (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL)
VGG16_LAYERS += (512, 512, 512, POOL, 512, 512, 512, POOL)
VGG16_SIZE = 32  # five 2x2 poolings take 32x32 down to 1x1


def _features(channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = channels
    for width in VGG16_LAYERS:
        if width == POOL:
            layers.append(nn.MaxPool2d(2))
            continue
        layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        c_in = width
    return nn.Sequential(*layers)


class VGG16(nn.Module):
    """CIFAR-style VGG-16 with batch norm (see the module docstring)."""

    def __init__(self, channels: int, height: int, width: int, num_classes: int) -> None:
        super().__init__()
        self.pad = pad_to(height, width, VGG16_SIZE)
        self.features = _features(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(VGG16_LAYERS[-2], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.pool(self.features(self.pad(x)))  # (B, 512, 1, 1)
        return self.classifier(h.flatten(1))  # (B, num_classes)


def build_vgg16(spec: ModelSpec) -> VGG16:
    """Needs an image ``input_shape = (C, H, W)`` and ``num_classes``."""
    channels, height, width = spec.need_image("vgg16")
    return VGG16(channels, height, width, spec.need_num_classes("vgg16"))
