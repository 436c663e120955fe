"""An endless stream of minibatches over one worker's shard, driven by a torch.Generator.

Epoch e draws a permutation of the shard's n samples from the worker's generator and cuts it
into floor(n / B) batches of B samples (the last, partial batch is dropped so that every
gradient averages the same number of samples):

    perm_e = randperm(n, generator)              # (1) at the start of each epoch
    batch_j = perm_e[j B : (j + 1) B]            # (2) j = 0, ..., floor(n / B) - 1

The state (generator, current permutation, position) saves and loads, so a resumed stream
continues with the very batches the uninterrupted one would have drawn.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["BatchStream"]


class BatchStream:
    """Indices of the next batch of ``batch_size`` among ``size`` samples."""

    def __init__(self, size: int, batch_size: int, generator: torch.Generator) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        if batch_size > size:
            raise ValueError(
                f"batch_size must be <= the samples of this worker's shard ({size}); "
                f"got {batch_size} (use fewer workers or a smaller --batch-size)"
            )
        self.size = size
        self.batch_size = batch_size
        self.generator = generator
        self.perm = torch.randperm(size, generator=generator)  # (1)
        self.position = 0
        self.epochs_done = 0
        self.batches = 0

    def next(self) -> Tensor:
        """``(batch_size,)`` int64 sample indices of the next batch."""
        if self.position + self.batch_size > self.size:
            self.perm = torch.randperm(self.size, generator=self.generator)  # (1)
            self.position = 0
            self.epochs_done += 1
        batch = self.perm[self.position : self.position + self.batch_size]  # (2)
        self.position += self.batch_size
        self.batches += 1
        return batch

    @property
    def samples_seen(self) -> int:
        return self.batches * self.batch_size

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "perm": self.perm.clone(),
            "position": self.position,
            "epochs_done": self.epochs_done,
            "batches": self.batches,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["perm"].numel() != self.size:
            raise ValueError(
                f"batch stream state is for {state['perm'].numel()} samples; have {self.size}"
            )
        self.generator.set_state(state["generator"])
        self.perm = state["perm"].clone()
        self.position = int(state["position"])
        self.epochs_done = int(state["epochs_done"])
        self.batches = int(state["batches"])
