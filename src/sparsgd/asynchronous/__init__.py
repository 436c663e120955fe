"""Asynchronous SGD, parameter server: stale, sparsified pushes (docs/algorithms.md section 4).

    cfg = AsyncConfig(mode="async", workers=3, steps=300, policy="staleness_aware")
    summary = run_async(cfg, Problem("fnn3", "digits"), "runs/ps")    # 1 server + 3 workers

The server's update rule (:mod:`~sparsgd.asynchronous.server_state`, policies in
:mod:`~sparsgd.asynchronous.policies`) and its decisions (:mod:`~sparsgd.asynchronous.server_core`)
are shared with the one-process simulator, :mod:`sparsgd.sim.sim_run`. See docs/async.md.
"""

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.launcher import AsyncRun, AsyncRunFailed, run_async
from sparsgd.asynchronous.policies import POLICIES, PolicySettings, make_policy
from sparsgd.asynchronous.problem import Problem
from sparsgd.asynchronous.server_state import Applied, RejectedPush, ServerState

__all__ = [
    "POLICIES",
    "Applied",
    "AsyncConfig",
    "AsyncRun",
    "AsyncRunFailed",
    "PolicySettings",
    "Problem",
    "RejectedPush",
    "ServerState",
    "make_policy",
    "run_async",
]
