"""One worker's step, the same code in a worker process and in the simulator.

Given the model x it pulled (version t_w), worker w computes what it pushes
(docs/algorithms.md, error feedback and staleness policies):

    batch   = stream.next()                     # (1) its own shard, its own generator
    g, loss = grad f(x; batch)                  # (2)
    p       = memory.compensate(g)              # (3) residual memory: p = e + g
    c       = C(p, density)                     # (4) the compressor's sparse message
    e      <- p - c                             # (5) memory.update_(p - c, sent indices)
    push (c, t_w, ||e||)

``||e||`` (the L2 norm of what the memory keeps; 0 for memory ``none``, which keeps nothing)
goes with every push, so the server knows how much gradient a worker that dies takes with it.
A worker that stops normally flushes: it pushes every non-zero entry of
``memory.compensate(0)`` (its whole residual) and keeps nothing. A gradient holding NaN/Inf is
refused by the memory before it touches the residual (compress.checks policy): the step is
skipped, counted in ``skipped_nonfinite``, and nothing is pushed.

Dense pushes (``dense_pushes=True``, the simulator's choice): when (4) would send every entry
of ``p`` unchanged and (5) keep nothing (compressor ``dense``, or ``topk`` at density 1, with
float32 values; memory ``none``), the push is ``p`` itself, a (d,) tensor, instead of a
message of d indices and d values: the same numbers and the same bytes on the wire (a dense
frame), without building and checking d indices. The real worker keeps messages (its wire
format).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sparsgd.asynchronous.worker_state import check_finite_state
from sparsgd.comm.ps_transport import wire_bytes
from sparsgd.compress.base import Compressor
from sparsgd.compress.checks import NonFiniteError
from sparsgd.compress.memory import Memory
from sparsgd.compress.message import SparseMessage, index_dtype
from sparsgd.worker.batches import BatchStream
from sparsgd.worker.flat_model import FlatModel
from sparsgd.worker.seeds import generator_for

__all__ = ["GradientWorker", "Push"]

SEED_RANGE = 2**62  # per-step dropout seeds are drawn in [0, SEED_RANGE)


@dataclass(frozen=True)
class Push:
    """What a step produced: the message and what the worker reports with it."""

    msg: SparseMessage | Tensor  # a (d,) tensor: a dense push, every entry in order
    loss: float
    residual_norm: float  # ||e|| after the step

    @property
    def nbytes(self) -> int:
        """Payload bytes on the wire (a dense push: a dense frame)."""
        if isinstance(self.msg, Tensor):
            return wire_bytes(self.msg.numel(), self.msg.numel(), self.msg.dtype)
        return wire_bytes(self.msg.nnz, self.msg.numel, self.msg.values.dtype)


class GradientWorker:
    """Worker ``worker``'s data, memory and compressor; ``step(x)`` is steps (1)-(5)."""

    def __init__(
        self,
        worker: int,
        model: FlatModel,
        inputs: Tensor,
        targets: Tensor,
        compressor: Compressor,
        memory: Memory,
        density: float,
        batch_size: int,
        seed: int,
        restart: int = 0,
        dense_pushes: bool = False,
    ) -> None:
        if len(inputs) != len(targets):
            raise ValueError(
                f"inputs and targets differ in length: {len(inputs)} != {len(targets)}"
            )
        self.worker = worker
        self.model = model
        self.inputs, self.targets = inputs, targets
        self.compressor, self.memory, self.density = compressor, memory, density
        # a process restarted at version r > 0 (a resumed run) draws fresh streams, unless
        # it is given its saved state (asynchronous.worker_state.restore_worker)
        keys = ("worker", worker) if restart == 0 else ("worker", worker, "restart", restart)
        self.stream = BatchStream(len(targets), batch_size, generator_for(seed, *keys, "batches"))
        self.dropout = generator_for(seed, *keys, "dropout")
        self.skipped_nonfinite = 0
        self.steps = 0
        self.dense_pushes = dense_pushes and _sends_p_whole(compressor, memory, density)

    @property
    def keeps_residual(self) -> bool:
        return self.memory.name != "none"

    def step(self, x: Tensor) -> Push | None:
        """Steps (1)-(5) at the pulled model ``x``; ``None`` if the gradient was not finite."""
        batch = self.stream.next()  # (1)
        seed = int(torch.randint(SEED_RANGE, (), generator=self.dropout))
        g, loss = self.model.gradient(x, self.inputs[batch], self.targets[batch], seed)  # (2)
        try:
            p = self.memory.compensate(g)  # (3)
        except NonFiniteError:
            self.skipped_nonfinite += 1
            return None
        if self.dense_pushes:  # (4) c = p, (5) nothing kept: p is the push (module docstring)
            self.steps += 1
            return Push(p, loss, 0.0)
        msg = self.compressor.compress(p, self.density)  # (4)
        residual = msg.subtract_from_(p)  # in place: p is this step's (memory-owned) buffer
        self.memory.update_(residual, msg.indices.long())  # (5)
        self.steps += 1
        norm = float(residual.norm()) if self.keeps_residual else 0.0
        return Push(msg, loss, norm)

    def flush(self) -> SparseMessage:
        """Everything the memory still holds, as one message; the memory is empty after it."""
        p = self.memory.compensate(torch.zeros(self.model.numel))
        sent = torch.nonzero(p).flatten()
        self.memory.update_(torch.zeros_like(p), sent)
        numel = self.model.numel
        return SparseMessage(sent.to(index_dtype(numel)), p[sent].to(torch.float32), numel)

    def state_dict(self, check: bool = True) -> dict[str, Any]:
        """Everything the next steps depend on; with ``check``, a memory that holds NaN/Inf
        is refused (:class:`~sparsgd.asynchronous.worker_state.WorkerStateError`)."""
        state = {
            "stream": self.stream.state_dict(),
            "dropout": self.dropout.get_state(),
            "compressor": self.compressor.state_dict(),
            "memory": self.memory.state_dict(),
            "skipped_nonfinite": self.skipped_nonfinite,
            "steps": self.steps,
        }
        if check:
            check_finite_state(state, f"worker {self.worker}'s state")
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state["stream"])
        self.dropout.set_state(state["dropout"])
        self.compressor.load_state_dict(state["compressor"])
        self.memory.load_state_dict(state["memory"])
        self.skipped_nonfinite = int(state["skipped_nonfinite"])
        self.steps = int(state["steps"])


def _sends_p_whole(compressor: Compressor, memory: Memory, density: float) -> bool:
    """Whether (4) sends every entry of p as it is and (5) keeps nothing."""
    if memory.name != "none" or getattr(compressor, "value_dtype", None) != torch.float32:
        return False
    return compressor.name == "dense" or (compressor.name == "topk" and density == 1.0)
