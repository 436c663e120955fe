"""Each worker's mini-batches, reproducible from a checkpoint to the batch.

Classification (``SampleBatches``): every epoch draws a permutation of this rank's shard from
the rank's own ``torch.Generator`` (seeded from the run seed and the rank) and walks it in
batches of ``B``:

    perm = randperm(n, generator)                      # (n,) at the start of each epoch
    batch j = shard[perm[j B : (j + 1) B]]             # j = 0 .. steps_per_epoch - 1

Language (``StreamBatches``): this rank's contiguous piece of the token stream is cut into
``B`` columns, ``data = batchify(piece, B)`` of shape ``(T, B)``, and read in windows of
``bptt`` rows (truncated BPTT, :mod:`sparsgd.data.lm_batches`); order is content, so nothing is
shuffled and the LSTM's hidden state is carried from one window to the next within an epoch.

Every rank must run the same number of steps per epoch (a collective waits for all ranks), so
``steps_per_epoch`` is computed from the smallest shard, identical on every rank. The state
(generator, permutation, position) goes into checkpoints so that a resumed run sees exactly
the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from sparsgd.data import batchify, bptt_batch

__all__ = ["SampleBatches", "StreamBatches", "sample_steps_per_epoch", "stream_steps_per_epoch"]


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
