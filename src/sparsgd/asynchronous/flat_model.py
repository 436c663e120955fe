"""A classifier seen through one flat parameter vector, the currency of the parameter server.

The server stores x (d,), the concatenation of the trainable parameters in
``module.parameters()`` order; a worker loads the x it pulled and returns the flat gradient:

    load x into the parameters                        # (1)
    loss = cross_entropy(module(inputs), targets)    # (2) mean over the batch
    g    = concat(p.grad for p in parameters)        # (3) (d,)

Models with buffers (BatchNorm's running statistics) train, but their buffers stay local to
each process: the server evaluates with the buffers of its own copy, which no push updates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

__all__ = ["EVAL_BATCH", "FlatModel"]

EVAL_BATCH = 1000  # samples per forward pass when evaluating: bounds memory, not results


class FlatModel:
    """``module`` plus the map between its parameters and a flat (d,) vector."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.params = [p for p in module.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters")
        self.numel = sum(p.numel() for p in self.params)
        self.has_buffers = any(True for _ in module.buffers())

    def flat(self) -> Tensor:
        """A copy of the current parameters as one (d,) float32 vector."""
        return parameters_to_vector(self.params).detach().clone()

    def load_(self, x: Tensor) -> None:
        """Copy the flat ``x`` (d,) into the module's parameters."""
        if x.shape != (self.numel,):
            raise ValueError(f"x must have shape ({self.numel},); got {tuple(x.shape)}")
        with torch.no_grad():
            vector_to_parameters(x, self.params)

    def gradient(
        self, x: Tensor, inputs: Tensor, targets: Tensor, seed: int
    ) -> tuple[Tensor, float]:
        """``(g (d,), loss)`` at ``x`` on one batch; ``seed`` drives dropout, if any.

        The forward pass runs inside ``torch.random.fork_rng`` seeded with ``seed``, so a
        model with dropout stays deterministic and the global generator is left untouched.
        """
        self.load_(x)  # (1)
        self.module.train()
        for p in self.params:
            p.grad = None
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)  # the CPU generator only: cheap
            loss = F.cross_entropy(self.module(inputs), targets)  # (2)
            loss.backward()
        g = torch.cat([_grad_of(p).reshape(-1) for p in self.params])  # (3)
        return g, float(loss.detach())

    @torch.no_grad()
    def evaluate(self, x: Tensor, inputs: Tensor, targets: Tensor) -> tuple[float, float]:
        """``(accuracy, mean loss)`` of the model ``x`` on a labelled set."""
        self.load_(x)
        self.module.eval()
        correct, total_loss = 0, 0.0
        for start in range(0, len(targets), EVAL_BATCH):
            logits = self.module(inputs[start : start + EVAL_BATCH])
            batch = targets[start : start + EVAL_BATCH]
            total_loss += float(F.cross_entropy(logits, batch, reduction="sum"))
            correct += int((logits.argmax(dim=1) == batch).sum())
        n = max(1, len(targets))
        return correct / n, total_loss / n


def _grad_of(p: Tensor) -> Tensor:
    """``p.grad``, or zeros for a parameter the loss does not reach."""
    return p.grad if p.grad is not None else torch.zeros_like(p)
