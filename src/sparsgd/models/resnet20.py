"""ResNet-20 for CIFAR-10 (He et al., CVPR 2016, section 4.2), ~0.27M parameters.

    x: (B, C, H, W)
      -> Conv3x3(C, 16) -> BN -> ReLU                       (B, 16, H, W)
      -> stage 1: 3 basic blocks, 16 channels, stride 1      (B, 16, H, W)
      -> stage 2: 3 basic blocks, 32 channels, stride 2      (B, 32, H/2, W/2)
      -> stage 3: 3 basic blocks, 64 channels, stride 2      (B, 64, H/4, W/4)
      -> global average pool -> Linear(64, num_classes)

    basic block: y = ReLU(BN(Conv3x3(ReLU(BN(Conv3x3(x))))) + shortcut(x))

Shortcuts are the paper's option A: identity, and where the shape changes, subsample by 2
and zero-pad the new channels, so they add no parameters (20 weight layers in all: 1 + 18 + 1).
The global average pool makes the network accept any image size; 32x32 (CIFAR), 28x28
(MNIST) and 8x8 (sklearn digits) all run unchanged. Parameters: 269,722 for 3x32x32 inputs
and 10 classes (269,434 for one channel), the 0.27M of the paper.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from sparsgd.models.spec import ModelSpec

__all__ = ["RESNET20_BLOCKS", "RESNET20_WIDTHS", "BasicBlock", "ResNet20", "build_resnet20"]

RESNET20_WIDTHS = (16, 32, 64)  # channels of the three stages
RESNET20_BLOCKS = 3  # basic blocks per stage: 6 * 3 + 2 = 20 weight layers


def _conv3x3(c_in: int, c_out: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a parameter-free (option A) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv3x3(c_out, c_out, 1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride = stride
        self.extra_channels = c_out - c_in

    def shortcut(self, x: Tensor) -> Tensor:
        """Identity, or subsample by ``stride`` and zero-pad the channel dimension."""
        if self.stride == 1 and self.extra_channels == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        half = self.extra_channels // 2
        # F.pad pads the last dims first: (W left, W right, H top, H bottom, C front, C back).
        return F.pad(x, (0, 0, 0, 0, half, self.extra_channels - half))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """CIFAR-style ResNet-20 (see the module docstring)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        first = RESNET20_WIDTHS[0]
        self.stem = nn.Sequential(_conv3x3(channels, first, 1), nn.BatchNorm2d(first), nn.ReLU())
        blocks: list[nn.Module] = []
        c_in = first
        for stage, width in enumerate(RESNET20_WIDTHS):
            for index in range(RESNET20_BLOCKS):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(c_in, width, stride))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.stem(x))  # (B, 64, H/4, W/4)
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)  # (B, 64)
        return self.fc(h)  # (B, num_classes)


def build_resnet20(spec: ModelSpec) -> ResNet20:
    """Needs an image ``input_shape = (C, H, W)`` and ``num_classes``; any H, W."""
    channels, _, _ = spec.need_image("resnet20")
    return ResNet20(channels, spec.need_num_classes("resnet20"))
