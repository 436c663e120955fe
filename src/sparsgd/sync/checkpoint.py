"""Checkpoints of a synchronous run: what every rank needs to continue bit for bit.

One file per checkpoint, written by rank 0 (``runs.RunDir.save_checkpoint``):

    {"format": 1, "step": s, "world_size": P,
     "shared": {model, optimizer, wall_seconds},        # identical on every rank: saved once
     "ranks":  [state of rank 0, ..., state of rank P-1]}

    state of rank r = {buffers        model buffers (BatchNorm statistics drift per rank)
                       memory         residual e, or DGC's u and v
                       compressor     random generator of randomk / sampled, if any
                       batches        data-order generator, this epoch's permutation, position
                       task           LSTM hidden state carried between BPTT windows
                       torch_rng      the process's global generator (dropout draws from it)
                       cuda_rng       the same for the GPU, when there is one
                       tallies        run, epoch and window statistics}

The parameters and the optimizer's momentum buffers are identical on every rank (the update
is the same everywhere), so rank 0's copies stand for all. Rank 0 gathers the per-rank states
and, when resuming, reads the file and hands every rank its own: no shared file system is
needed between machines. The states travel as JSON and tensor bytes
(:mod:`sparsgd.sync.state_wire`), never as pickles.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from sparsgd.sync.build import Parts
from sparsgd.sync.report import Tally
from sparsgd.sync.state_wire import broadcast_state, gather_state, scatter_state

__all__ = ["FORMAT", "collect_checkpoint", "restore_checkpoint"]

FORMAT = 1


def _to_cpu(obj: Any) -> Any:
    """The same nested dicts / lists with every tensor copied to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _rank_state(parts: Parts, tallies: dict[str, Tally]) -> dict[str, Any]:
    buffers = {name: b.detach().cpu().clone() for name, b in parts.model.named_buffers()}
    state = {
        "buffers": buffers,
        "memory": parts.sgd.memory.state_dict(),
        "compressor": None if parts.compressor is None else parts.compressor.state_dict(),
        "batches": parts.batches.state_dict(),
        "task": parts.task.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None,
        "tallies": {name: t.state_dict() for name, t in tallies.items()},
        "skipped_nonfinite": parts.sgd.skipped_nonfinite,
    }
    return state


def collect_checkpoint(
    parts: Parts, step: int, tallies: dict[str, Tally], shared_extra: dict[str, Any]
) -> dict[str, Any] | None:
    """Gather every rank's state; the whole checkpoint on rank 0, ``None`` elsewhere."""
    mine = _rank_state(parts, tallies)
    rank, world = dist.get_rank(), dist.get_world_size()
    gathered = gather_state(mine, 0, _device(parts))
    if rank != 0:
        return None
    shared = {
        "model": {k: v.detach().cpu().clone() for k, v in parts.model.state_dict().items()},
        "optimizer": _to_cpu(parts.sgd.optimizer.state_dict()),
        **shared_extra,
    }
    return {
        "format": FORMAT,
        "step": step,
        "world_size": world,
        "shared": shared,
        "ranks": gathered,
    }


def restore_checkpoint(
    parts: Parts, checkpoint: dict[str, Any] | None, tallies: dict[str, Tally]
) -> tuple[int, dict[str, Any]]:
    """Load rank 0's ``checkpoint`` into every rank; returns ``(step, shared extras)``."""
    rank, world = dist.get_rank(), dist.get_world_size()
    header = None
    if rank == 0:
        _check_format(checkpoint, world)
        shared = {k: v for k, v in checkpoint["shared"].items() if k not in ("optimizer",)}
        header = (checkpoint["step"], shared, checkpoint["shared"]["optimizer"])
    # same params and optimizer state everywhere, then each rank's own state
    step, shared, optimizer_state = broadcast_state(header, 0, _device(parts))
    mine = scatter_state(checkpoint["ranks"] if rank == 0 else None, 0, _device(parts))
    _load_rank(parts, shared["model"], optimizer_state, mine, tallies)
    extras = {k: v for k, v in shared.items() if k != "model"}
    return int(step), extras


def _device(parts: Parts) -> torch.device:
    """The collectives' device: the model's (CPU for gloo, the rank's GPU for NCCL)."""
    return next(parts.model.parameters()).device


def _check_format(checkpoint: dict[str, Any] | None, world: int) -> None:
    if checkpoint is None or checkpoint.get("format") != FORMAT:
        raise ValueError(
            f"checkpoint format must be {FORMAT}; got {checkpoint and checkpoint.get('format')!r}"
        )
    if checkpoint["world_size"] != world:
        raise ValueError(
            f"the checkpoint holds {checkpoint['world_size']} ranks' states; resume with "
            f"--workers {checkpoint['world_size']} (got {world})"
        )


def _load_rank(
    parts: Parts,
    model_state: dict[str, Any],
    optimizer_state: dict[str, Any],
    state: dict[str, Any],
    tallies: dict[str, Tally],
) -> None:
    device = next(parts.model.parameters()).device
    model_state = dict(model_state)
    model_state.update(state["buffers"])  # this rank's own buffers
    parts.model.load_state_dict({k: v.to(device) for k, v in model_state.items()})
    parts.sgd.optimizer.load_state_dict(optimizer_state)
    parts.sgd.memory.load_state_dict(state["memory"])
    if parts.compressor is not None:
        parts.compressor.load_state_dict(state["compressor"])
    parts.batches.load_state_dict(state["batches"])
    parts.task.load_state_dict(state["task"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_rng"])
    for name, tally in tallies.items():
        tally.load_state_dict(state["tallies"][name])
    parts.sgd.skipped_nonfinite = int(state["skipped_nonfinite"])
