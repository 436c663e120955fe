"""Each worker's mini-batches, reproducible from a checkpoint to the batch.

Synchronous trainer, classification (``SampleBatches``): every epoch draws a permutation of
this rank's shard from the rank's own ``torch.Generator`` (seeded from the run seed and the
rank) and walks it in batches of ``B``:

    perm = randperm(n, generator)                      # (n,) at the start of each epoch
    batch j = shard[perm[j B : (j + 1) B]]             # j = 0 .. steps_per_epoch - 1

Synchronous trainer, language (``StreamBatches``): this rank's contiguous piece of the token
stream is cut into ``B`` columns, ``data = batchify(piece, B)`` of shape ``(T, B)``, and read in
windows of ``bptt`` rows (truncated BPTT, :mod:`sparsgd.data.lm_batches`); order is content, so
nothing is shuffled and the LSTM's hidden state is carried from one window to the next within
an epoch.

Every rank must run the same number of steps per epoch (a collective waits for all ranks), so
``steps_per_epoch`` is computed from the smallest shard, identical on every rank. The state
(generator, permutation, position) goes into checkpoints so that a resumed run sees exactly
the batches the uninterrupted run would have seen.

Parameter-server workers (``BatchStream``): no collective waits for the others, so the stream
is endless. Epoch e draws a permutation of the shard's n samples and cuts it into floor(n / B)
batches of B samples (the last, partial batch is dropped so that every gradient averages the
same number of samples):

    perm_e  = randperm(n, generator)             # (1) at the start of each epoch
    batch_j = perm_e[j B : (j + 1) B]            # (2) j = 0, ..., floor(n / B) - 1
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from sparsgd.data import batchify, bptt_batch

__all__ = [
    "BatchStream",
    "SampleBatches",
    "StreamBatches",
    "sample_steps_per_epoch",
    "stream_steps_per_epoch",
]


def sample_steps_per_epoch(smallest_shard: int, batch_size: int) -> int:
    """``ceil(n_min / B)``: the last batch of an epoch may be smaller."""
    return max(1, math.ceil(smallest_shard / batch_size))


def stream_steps_per_epoch(smallest_piece: int, batch_size: int, bptt: int) -> int:
    """Windows of ``bptt`` rows in the ``(T, B)`` batchified piece: ``ceil((T - 1) / bptt)``."""
    rows = smallest_piece // batch_size
    return max(1, math.ceil((rows - 1) / bptt))


class SampleBatches:
    """Shuffled mini-batches of one rank's classification shard."""

    def __init__(
        self,
        shard: TensorDataset,
        batch_size: int,
        steps_per_epoch: int,
        generator: torch.Generator,
    ) -> None:
        self.x, self.y = shard.tensors  # (n, *input_shape), (n,)
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.generator = generator
        self.perm = torch.arange(len(self.y))
        self.position = steps_per_epoch  # no epoch started yet

    def start_epoch(self) -> None:
        self.perm = torch.randperm(len(self.y), generator=self.generator)  # (n,)
        self.position = 0

    def next_batch(self) -> tuple[Tensor, Tensor]:
        """``(x (b, ...), y (b,))`` of the next step; the epoch must not be exhausted."""
        if self.position >= self.steps_per_epoch:
            raise RuntimeError("epoch exhausted: call start_epoch() first")
        start = self.position * self.batch_size
        index = self.perm[start : start + self.batch_size]
        self.position += 1
        return self.x[index], self.y[index]

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "perm": self.perm,
            "position": self.position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perm = state["perm"].clone()
        self.position = int(state["position"])


class StreamBatches:
    """Consecutive BPTT windows of one rank's piece of a token stream."""

    def __init__(self, piece: Tensor, batch_size: int, bptt: int, steps_per_epoch: int) -> None:
        self.data = batchify(piece, batch_size)  # (T, B)
        self.bptt = bptt
        self.steps_per_epoch = steps_per_epoch
        self.position = steps_per_epoch

    def start_epoch(self) -> None:
        self.position = 0

    def next_batch(self) -> tuple[Tensor, Tensor]:
        """``(inputs (l, B), targets (l, B))``, ``l <= bptt``."""
        if self.position >= self.steps_per_epoch:
            raise RuntimeError("epoch exhausted: call start_epoch() first")
        start = self.position * self.bptt
        self.position += 1
        return bptt_batch(self.data, start, self.bptt)

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = int(state["position"])


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
