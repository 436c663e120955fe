"""Asynchronous SGD with a parameter server: stale, sparsified pushes.

docs/algorithms.md, staleness policies.

    cfg = AsyncConfig(mode="async", workers=3, steps=300, policy="staleness_aware")
    summary = run_async(cfg, Problem("fnn3", "digits"), "runs/ps")    # 1 server + 3 workers

One push, worker to server: the worker's step (:mod:`~sparsgd.asynchronous.gradient_worker`:
gradient, memory, compressor), the frame in (:mod:`~sparsgd.asynchronous.server`), the server's
decisions (:mod:`~sparsgd.asynchronous.server_core`), the whole update in one function
(:meth:`ServerState.push <sparsgd.asynchronous.server_state.ServerState.push>`, policies and
SSP bound in :mod:`~sparsgd.asynchronous.policies`) and the log
(:mod:`~sparsgd.asynchronous.run_record`). All but the frames are shared with the one-process
simulator, :mod:`sparsgd.sim.sim_run`. The model, data, batches and seeds of a worker are the
:mod:`sparsgd.worker` package's. See docs/async.md.
"""

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.policies import POLICIES, PolicySettings, make_policy
from sparsgd.asynchronous.real_run import AsyncRun, run_async
from sparsgd.asynchronous.server_state import Applied, RejectedPush, ServerState
from sparsgd.worker.problem import Problem

__all__ = [
    "POLICIES",
    "Applied",
    "AsyncConfig",
    "AsyncRun",
    "PolicySettings",
    "Problem",
    "RejectedPush",
    "ServerState",
    "make_policy",
    "run_async",
]
