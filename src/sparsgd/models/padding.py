"""Centred zero padding that lets a network defined on 32x32 images take smaller ones.

    (B, C, H, W) -> (B, C, max(H, side), max(W, side))

LeNet-5 and VGG-16 fix their feature-map sizes for 32x32 inputs. A smaller image (MNIST
28x28, sklearn digits 8x8) is surrounded by zeros: ``(side - H) // 2`` rows on top and the
rest at the bottom, likewise for columns. For 28x28 that is 2 pixels on each side, exactly
the ``padding=2`` the classic LeNet-5 applies to MNIST. Zero is the normalized data's mean
only approximately, which the networks' biases absorb. Larger images are left as they are
(the networks pool them down instead).
"""

from __future__ import annotations

from torch import nn

__all__ = ["pad_to"]


def pad_to(height: int, width: int, side: int) -> nn.Module:
    """A module padding ``height x width`` images to at least ``side x side`` (or identity)."""
    for name, value in (("height", height), ("width", width), ("side", side)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1; got {value}")
    pad_h = max(0, side - height)
    pad_w = max(0, side - width)
    if pad_h == 0 and pad_w == 0:
        return nn.Identity()
    # ZeroPad2d takes (left, right, top, bottom); odd remainders go right / bottom.
    return nn.ZeroPad2d((pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
