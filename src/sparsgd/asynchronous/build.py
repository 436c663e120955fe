"""The objects an asynchronous run is made of, built from its settings.

    state  = build_server_state(cfg, x0)              # the server: policy, mu, W clocks
    worker = build_gradient_worker(cfg, w, model, X, y)   # worker w: compressor, memory

Both the real server (:mod:`sparsgd.asynchronous.server`, :mod:`sparsgd.asynchronous.worker`)
and the simulator (:mod:`sparsgd.sim.sim_run`) build through here, so the two modes cannot
disagree on a setting. A compressor that draws (randomk, sampled) gets its own seeded stream
per worker (:mod:`sparsgd.worker.seeds`).
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import Tensor

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.gradient_worker import GradientWorker
from sparsgd.asynchronous.policies import make_policy
from sparsgd.asynchronous.server_state import ServerState
from sparsgd.compress.memory import Memory, make_memory
from sparsgd.compress.registry import COMPRESSORS, make_compressor
from sparsgd.worker.flat_model import FlatModel
from sparsgd.worker.seeds import derive_seed

__all__ = ["build_gradient_worker", "build_server_state"]


def build_server_state(cfg: AsyncConfig, x0: Tensor) -> ServerState:
    """The server of ``cfg``: its policy (and SSP bound), momentum, clocks, change tracking."""
    policy = make_policy(cfg.policy, cfg.policy_settings())
    return ServerState(
        x0,
        policy,
        cfg.server_momentum,
        track_changes=cfg.sparse_downlink,
        workers=cfg.workers,
        max_push=cfg.max_push,
    )


def build_gradient_worker(
    cfg: AsyncConfig,
    worker: int,
    model: FlatModel,
    inputs: Tensor,
    targets: Tensor,
    restart: int = 0,
    dense_pushes: bool = False,
    memory: Memory | None = None,
) -> GradientWorker:
    """Worker ``worker`` with its compressor (seeded per worker when it draws) and memory.

    ``restart``: the server version a real worker process starts at (0, or a resumed run's);
    ``dense_pushes``: push p itself when the step sends all of it (the simulator's choice,
    :class:`~sparsgd.asynchronous.gradient_worker.GradientWorker`); ``memory``: the worker's
    memory when the caller builds it (the simulator's residuals in a file), else cfg.memory's.
    """
    settings: dict[str, Any] = dict(cfg.compressor_settings)
    if (
        "seed" in inspect.signature(COMPRESSORS[cfg.compressor]).parameters
        and "seed" not in settings
    ):
        settings["seed"] = derive_seed(cfg.seed, "worker", worker, "compressor")
    compressor = make_compressor(cfg.compressor, **settings)
    if memory is None:
        memory = make_memory(cfg.memory, model.numel, **dict(cfg.memory_settings))
    return GradientWorker(
        worker,
        model,
        inputs,
        targets,
        compressor,
        memory,
        cfg.density,
        cfg.batch_size,
        cfg.seed,
        restart,
        dense_pushes,
    )
