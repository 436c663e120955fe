"""sparsgd.sync: synchronous data-parallel SGD (S-SGD) with dense, Top-k and gTop-k aggregation.

    summary = train(SyncConfig(out="runs/a", method="gtopk", density=0.001, workers=4))
    summary = resume("runs/a")

One step on every rank: flat gradient -> error feedback -> collective -> averaged gradient ->
torch.optim.SGD (momentum and weight decay after aggregation); see :mod:`sparsgd.sync.step`.
The loop, run folder and checkpoints are in :mod:`sparsgd.sync.trainer`, the launcher
(spawned workers or torchrun) in :mod:`sparsgd.comm.launch`, and a DDP communication hook for
your own scripts in :mod:`sparsgd.sync.ddp_hook`. Guide: docs/training.md.
"""

from sparsgd.comm.launch import WorkerContext, WorkerFailed, launch
from sparsgd.sync.config import METHODS, SyncConfig, check_config
from sparsgd.sync.ddp_hook import SparseHookState, sparse_allreduce_hook
from sparsgd.sync.step import StepStats, SyncSGD
from sparsgd.sync.train import resume, train

__all__ = [
    "METHODS",
    "SparseHookState",
    "StepStats",
    "SyncConfig",
    "SyncSGD",
    "WorkerContext",
    "WorkerFailed",
    "check_config",
    "launch",
    "resume",
    "sparse_allreduce_hook",
    "train",
]
