"""A run that refuses many pushes logs the first few and counts all of them."""

from __future__ import annotations

import logging

import pytest

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.server_core import WARNED_REFUSALS
from sparsgd.sim.sim_run import build_simulation
from sparsgd.worker.problem import Problem

pytestmark = pytest.mark.timeout(120)

PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 256),))
STALL = 60  # refused pushes in a row before the run halts: many more than WARNED_REFUSALS


def test_refused_pushes_are_logged_up_to_the_cap_and_all_counted(caplog):
    # every push has an entry above max_push: refused as too large until the run halts
    cfg = AsyncConfig(
        mode="sim", workers=4, steps=40, lr=0.1, batch_size=8, density=0.1,
        max_push=1e-12, stall_pushes=STALL,
    )  # fmt: skip
    core, sim = build_simulation(cfg, PROBLEM)
    with caplog.at_level(logging.WARNING, logger="sparsgd.asynchronous.server_core"):
        sim.run()
    assert core.halted is not None and f"{STALL} pushes in a row refused" in core.halted
    assert core.state.rejected["too_large"] >= STALL  # every one counted
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    one_by_one = [m for m in warned if m.startswith("worker ")]
    assert len(one_by_one) == WARNED_REFUSALS
    assert sum("later ones are counted in the summary" in m for m in warned) == 1
