"""The model as one flat vector: gradients out, averaged gradients back in, a replica digest.

Every algorithm of the project works on the whole model concatenated (docs/algorithms.md section 0):

    g = cat([p.grad.reshape(-1) for p in params])       # (d,), d = sum of p.numel()
    write_grad_(params, a)                              # p.grad = a[offset : offset + p.numel()]

A parameter that took no part in the loss (``p.grad is None``) contributes zeros, so that d and
the offsets never change from one step to the next. Parameters shared by two modules (tied
weights) appear once: ``model.parameters()`` already lists them once.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["flat_grad", "flat_params", "trainable", "write_grad_"]


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that receive gradients, in ``model.parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def flat_grad(params: list[nn.Parameter]) -> Tensor:
    """``(d,)`` float32 copy of all gradients (zeros where ``grad`` is ``None``)."""
    parts = [
        p.grad.reshape(-1) if p.grad is not None else torch.zeros_like(p).reshape(-1)
        for p in params
    ]
    return torch.cat(parts).to(torch.float32)


def flat_params(params: list[nn.Parameter]) -> Tensor:
    """``(d,)`` copy of all parameter values."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def write_grad_(params: list[nn.Parameter], flat: Tensor) -> None:
    """Set every ``p.grad`` to its slice of ``flat`` (``(d,)``); changes the gradients only."""
    total = sum(p.numel() for p in params)
    if flat.shape != (total,):
        raise ValueError(f"flat gradient must have shape ({total},); got {tuple(flat.shape)}")
    offset = 0
    for p in params:
        piece = flat[offset : offset + p.numel()].view_as(p).to(p.dtype)
        if p.grad is None:
            p.grad = piece.clone()
        else:
            p.grad.copy_(piece)
        offset += p.numel()
