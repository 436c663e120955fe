"""The builders: one server state for W workers, and workers whose streams follow the restart."""

from __future__ import annotations

import torch

from sparsgd.asynchronous.build import build_gradient_worker, build_server_state
from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.worker import Problem

PROBLEM = Problem("logreg", "digits")
CFG = AsyncConfig(mode="sim", workers=3, policy="dampening", ssp_bound=2, batch_size=8)


def _first_batch(restart: int) -> torch.Tensor:
    bundle = PROBLEM.load()
    model = PROBLEM.build_model(bundle)
    inputs, targets = PROBLEM.worker_data(bundle, 1, CFG.workers)
    return build_gradient_worker(CFG, 1, model, inputs, targets, restart).stream.next()


def test_server_state_has_a_clock_per_worker_and_the_policy_bound():
    state = build_server_state(CFG, torch.zeros(5))
    assert state.clocks == [0, 0, 0] and state.policy.bound == 2
    assert state.policy.name == "dampening"


def test_a_restarted_worker_draws_fresh_batches_and_a_fresh_one_repeats_itself():
    assert torch.equal(_first_batch(0), _first_batch(0))
    assert not torch.equal(_first_batch(0), _first_batch(40))
