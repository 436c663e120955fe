"""A real worker's state for the server's checkpoints: built, checked, restored.

    state = worker_state(gw, pace, pushes, version)          # the worker, answering SAVE
    check_worker_state(state, worker, numel, version)        # the server, before keeping it
    pushes, version = restore_worker(gw, pace, state)        # a resumed worker, first pull

The state is plain data and tensors (it crosses as a STATE frame, :mod:`sparsgd.comm.state_codec`,
and is saved in the checkpoint):

    {"worker":   w,
     "version":  t_w, the version of the last model it pulled (its flush carries it),
     "pushes":   pushes it sent (reported at its flush),
     "gradient": GradientWorker.state_dict(): the memory (residual e, or DGC's u and v), the
                 batch stream (generator, permutation, position), the dropout and compressor
                 generators, its step and skipped-gradient counts,
     "delay":    the generator of its injected delays (--delay)}

Checked (:func:`check_worker_state`): exactly these keys, ``worker`` the sender, counts that
are integers >= 0, ``version`` not beyond the server's, memory tensors of ``numel`` entries,
and every float tensor finite: a residual holding NaN/Inf is refused where it would be saved
(:class:`WorkerStateError`, naming the worker, the entry and how many values).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from sparsgd.asynchronous.gradient_worker import GradientWorker
    from sparsgd.asynchronous.speed import Pace

__all__ = [
    "WorkerStateError",
    "check_finite_state",
    "check_worker_state",
    "restore_worker",
    "worker_state",
]

STATE_KEYS = frozenset({"worker", "version", "pushes", "gradient", "delay"})
GRADIENT_KEYS = frozenset(
    {"stream", "dropout", "compressor", "memory", "skipped_nonfinite", "steps"}
)


class WorkerStateError(ValueError):
    """A worker's state that must not be saved or restored (malformed, or not finite)."""


def _tensors(node: Any, path: str) -> Iterator[tuple[str, Tensor]]:
    """Every tensor in a nested state, with its path (``gradient.memory.e``)."""
    if isinstance(node, Tensor):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _tensors(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _tensors(value, f"{path}[{i}]")


def check_finite_state(state: Any, who: str) -> None:
    """Raise :class:`WorkerStateError` if a float tensor of ``state`` holds NaN or Inf."""
    for path, tensor in _tensors(state, ""):
        if tensor.is_floating_point():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise WorkerStateError(
                    f"{who}: {path} holds {bad} non-finite values (NaN/Inf) among "
                    f"{tensor.numel()}; a state that has diverged is not saved"
                )


def _count(state: dict[str, Any], key: str, who: str) -> int:
    value = state[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WorkerStateError(f"{who}: {key} must be an integer >= 0; got {value!r}")
    return value


def check_worker_state(state: Any, worker: int, numel: int, version: int | None = None) -> None:
    """Raise :class:`WorkerStateError` unless ``state`` is worker ``worker``'s, whole and finite.

    ``numel``: entries of the model (each memory tensor has as many); ``version``: the server's
    version, which the worker's last pulled version cannot exceed (``None``: not checked).
    """
    who = f"worker {worker}'s state"
    if not isinstance(state, dict) or set(state) != STATE_KEYS:
        got = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise WorkerStateError(f"{who} must be a dict with keys {sorted(STATE_KEYS)}; got {got}")
    if state["worker"] != worker or isinstance(state["worker"], bool):
        raise WorkerStateError(f"{who} names worker {state['worker']!r}")
    for key in ("version", "pushes"):
        _count(state, key, who)
    if version is not None and state["version"] > version:
        raise WorkerStateError(
            f"{who} has pulled version {state['version']}, beyond the server's {version}"
        )
    gradient = state["gradient"]
    if not isinstance(gradient, dict) or set(gradient) != GRADIENT_KEYS:
        raise WorkerStateError(f"{who}: gradient must be a dict with keys {sorted(GRADIENT_KEYS)}")
    for key in ("skipped_nonfinite", "steps"):
        _count(gradient, key, f"{who}: gradient")
    if not isinstance(gradient["memory"], dict):
        raise WorkerStateError(f"{who}: gradient.memory must be a dict")
    for path, tensor in _tensors(gradient["memory"], "gradient.memory"):
        if tensor.numel() != numel:
            raise WorkerStateError(
                f"{who}: {path} has {tensor.numel()} entries; the model has {numel}"
            )
    if not isinstance(state["delay"], Tensor) or state["delay"].dtype != torch.uint8:
        raise WorkerStateError(f"{who}: delay must be a generator state (uint8 tensor)")
    check_finite_state(state, who)


def worker_state(gw: GradientWorker, pace: Pace, pushes: int, version: int) -> dict[str, Any]:
    """The state of worker ``gw.worker`` between two steps (it holds no model being worked on).

    Not checked here: the server checks what it receives, and records a refusal.
    """
    return {
        "worker": gw.worker,
        "version": version,
        "pushes": pushes,
        "gradient": gw.state_dict(check=False),
        "delay": pace.generator.get_state(),
    }


def restore_worker(gw: GradientWorker, pace: Pace, state: Any) -> tuple[int, int]:
    """Load ``state`` (checked first) into a new worker; returns ``(pushes, version)``."""
    check_worker_state(state, gw.worker, gw.model.numel)
    gw.load_state_dict(state["gradient"])
    pace.generator.set_state(state["delay"])
    return int(state["pushes"]), int(state["version"])
