"""The model as one flat vector, the currency of every algorithm (docs/algorithms.md, notation).

Both trainers see the trainable parameters in ``model.parameters()`` order as x (d,):

    g = cat([p.grad.reshape(-1) for p in params])       # (d,), d = sum of p.numel()
    write_grad_(params, a)                              # p.grad = a[offset : offset + p.numel()]

``flat_grad(params, out=buf)`` writes the same g into a reused ``buf``, and
``write_grad_(params, a, divisor=P)`` writes the slices of a / P, each without a (d,) temporary.

A parameter that took no part in the loss (``p.grad is None``) contributes zeros, so that d and
the offsets never change from one step to the next. Parameters shared by two modules (tied
weights) appear once: ``model.parameters()`` already lists them once.

The synchronous trainer keeps its model in place and uses the functions; the parameter server
sends x itself, so its workers use :class:`FlatModel`, which loads the x it pulled and returns
the flat gradient:

    load x into the parameters                        # (1)
    loss = cross_entropy(module(inputs), targets)    # (2) mean over the batch (worker.tasks)
    g    = flat_grad(parameters)                     # (3) (d,)

Models with buffers (BatchNorm's running statistics) train, but their buffers stay local to
each process: the server evaluates with the buffers of its own copy, which no push updates.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sparsgd.worker.tasks import classification_loss, classification_scores

__all__ = ["FlatModel", "checksum", "flat_grad", "flat_params", "trainable", "write_grad_"]


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that receive gradients, in ``model.parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def flat_grad(params: list[nn.Parameter], out: Tensor | None = None) -> Tensor:
    """``(d,)`` float32 copy of all gradients (zeros where ``grad`` is ``None``).

    With ``out`` (a contiguous ``(d,)`` float32 tensor, e.g. a buffer reused across steps) the
    gradients are written into it and it is returned: the same bits, nothing allocated.
    """
    if out is not None:
        return _flat_grad_into(params, out)
    parts = [
        p.grad.reshape(-1) if p.grad is not None else torch.zeros_like(p).reshape(-1)
        for p in params
    ]
    return torch.cat(parts).to(torch.float32)


def _flat_grad_into(params: list[nn.Parameter], out: Tensor) -> Tensor:
    """Each gradient converted once to float32 into its slice of ``out`` (as ``cat`` + ``to``
    round it: the conversion to a wider dtype is exact)."""
    total = sum(p.numel() for p in params)
    if not isinstance(out, Tensor) or out.shape != (total,) or out.dtype != torch.float32:
        what = f"{tuple(out.shape)} {out.dtype}" if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"out must be a ({total},) float32 tensor; got {what}")
    if not out.is_contiguous():
        raise ValueError("out must be contiguous: it is written in slices of the flat layout")
    offset = 0
    for p in params:
        piece = out[offset : offset + p.numel()]
        if p.grad is None:
            piece.zero_()
        else:
            piece.copy_(p.grad.detach().reshape(-1))
        offset += p.numel()
    return out


def flat_params(params: list[nn.Parameter]) -> Tensor:
    """``(d,)`` copy of all parameter values."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def write_grad_(params: list[nn.Parameter], flat: Tensor, divisor: int | None = None) -> None:
    """Set every ``p.grad`` to its slice of ``flat`` (``(d,)``), or of ``flat / divisor``;
    changes the gradients only.

    With ``divisor`` the division is done slice by slice, straight into a gradient of
    ``flat``'s dtype (the same bits as ``flat / divisor``, without a (d,) temporary).
    """
    total = sum(p.numel() for p in params)
    if flat.shape != (total,):
        raise ValueError(f"flat gradient must have shape ({total},); got {tuple(flat.shape)}")
    if divisor is not None and (isinstance(divisor, bool) or not isinstance(divisor, int)):
        raise TypeError(f"divisor must be an int or None; got {divisor!r}")
    if divisor is not None and divisor < 1:
        raise ValueError(f"divisor must be >= 1; got {divisor}")
    offset = 0
    for p in params:
        piece = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
        if divisor is not None and p.grad is not None and p.grad.dtype == flat.dtype:
            torch.div(piece, divisor, out=p.grad)
            continue
        if divisor is not None:
            piece = piece / divisor
        piece = piece.to(p.dtype)
        if p.grad is None:
            p.grad = piece.clone()
        else:
            p.grad.copy_(piece)


def checksum(x: Tensor) -> float:
    """``sum(x)`` in float64: equal copies give equal sums, bit for bit."""
    return float(x.double().sum())


class FlatModel:
    """``module`` plus the map between its parameters and a flat (d,) vector."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.params = trainable(module)
        if not self.params:
            raise ValueError("the model has no trainable parameters")
        self.numel = sum(p.numel() for p in self.params)
        self._sizes = [p.numel() for p in self.params]
        self.has_buffers = any(True for _ in module.buffers())

    def flat(self) -> Tensor:
        """A copy of the current parameters as one (d,) vector."""
        return flat_params(self.params)

    def load_(self, x: Tensor) -> None:
        """Make the module's parameters views of the flat ``x`` (d,), as torch's
        ``vector_to_parameters`` does: no copy; the caller does not write into x meanwhile."""
        if x.shape != (self.numel,):
            raise ValueError(f"x must have shape ({self.numel},); got {tuple(x.shape)}")
        with torch.no_grad():
            for p, piece in zip(self.params, x.split(self._sizes), strict=True):
                p.data = piece.view_as(p)

    def gradient(
        self, x: Tensor, inputs: Tensor, targets: Tensor, seed: int
    ) -> tuple[Tensor, float]:
        """``(g (d,), loss)`` at ``x`` on one batch; ``seed`` drives dropout, if any.

        The forward pass runs inside ``torch.random.fork_rng`` seeded with ``seed``, so a
        model with dropout stays deterministic and the global generator is left untouched.
        """
        self.load_(x)  # (1)
        if not self.module.training:  # train() walks every submodule: only after evaluate()
            self.module.train()
        for p in self.params:
            p.grad = None
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)  # the CPU generator only: cheap
            loss = classification_loss(self.module, inputs, targets)  # (2)
            loss.backward()
        return flat_grad(self.params), float(loss.detach())  # (3)

    @torch.no_grad()
    def evaluate(self, x: Tensor, inputs: Tensor, targets: Tensor) -> tuple[float, float]:
        """``(accuracy, mean loss)`` of the model ``x`` on a labelled set."""
        self.load_(x)
        self.module.eval()
        loss_sum, correct, count = classification_scores(self.module, inputs, targets)
        n = max(1, count)
        return correct / n, loss_sum / n
