"""The delta loop under a recipe: the engine's schedules, delta's definition, a loud stop."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sparsgd.experiments.delta_cell import DeltaCell, run_cell
from sparsgd.experiments.delta_loop import run_delta
from sparsgd.experiments.sync_tasks import SyncTask
from sparsgd.sync.build import load_bundle

TASK = SyncTask(
    "FNN-3 / digits", "fnn3", "digits", epochs=2, lr=0.05, hidden_size=32, warmup_epochs=0.5
)
STEPS = 4  # steps per epoch (the shards hold more)
EXACT = 1e-12  # the same float computation on both sides


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trace(cell: DeltaCell):
    config = cell.config()
    return run_delta(config, load_bundle(config), STEPS)


def test_one_rank_gtopk_is_the_exact_top_k_of_x():
    # P = 1: gtopk(p_0) = topk(p_0) and x = p_0, so delta is delta_topk at every step
    trace = _trace(DeltaCell(TASK, "gtopk", 1, 0.01, "authors", seed=0))
    assert len(trace.steps) == 2 * STEPS
    for r in trace.steps:
        assert r["delta"] == pytest.approx(r["delta_topk"], abs=EXACT)
        assert 0.0 < r["delta_topk"] <= 1.0  # top-k contraction


def test_the_authors_recipe_warms_up_the_rate_and_the_density():
    trace = _trace(DeltaCell(TASK, "gtopk", 4, 0.001, "authors", seed=0))
    # density warm-up (gtopk kind): the first epoch at 0.004, then the target 0.001
    assert [r["density"] for r in trace.steps] == [0.004] * STEPS + [0.001] * STEPS
    assert [e["density"] for e in trace.epochs] == [0.004, 0.001]
    # lr warm-up from lr/P over N = 0.5 epoch = 2 steps: lr (1/4 + 3/4 (t + 1) / 2), then lr
    expected = [0.05 * min(1.0, 0.25 + 0.75 * (t + 1) / 2) for t in range(2 * STEPS)]
    assert [r["lr"] for r in trace.steps] == pytest.approx(expected, abs=EXACT)


def test_a_run_that_blows_up_stops_and_says_where():
    wild = replace(TASK, lr=1e5, warmup_epochs=None)  # plain recipe: no warm-up to soften it
    trace = _trace(DeltaCell(wild, "gtopk", 2, 0.5, "plain", seed=0))
    assert trace.diverged is not None and trace.diverged.startswith("non-finite")
    assert len(trace.steps) < 2 * STEPS


def test_a_cell_keeps_every_thin_th_step_and_means_over_all():
    cell = DeltaCell(TASK, "topk", 4, 0.01, "authors", seed=0, max_steps_per_epoch=STEPS, thin=3)
    result = run_cell(cell.spec())
    full = _trace(cell)
    assert result["trace"]["delta"] == pytest.approx(
        [r["delta"] for r in full.steps if r["step"] % 3 == 0],
        rel=1e-5,  # 6 digits kept
    )
    deltas = [r["delta"] for r in full.steps]
    assert result["mean_delta"] == pytest.approx(sum(deltas) / len(deltas), rel=1e-5)
    assert result["iterations"] == 2 * STEPS and result["outcome"] == "ok"


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        DeltaCell(TASK, "dense", 4, 0.01, "authors", seed=0)
    with pytest.raises(ValueError, match="thin must be an integer >= 1"):
        DeltaCell(TASK, "gtopk", 4, 0.01, "authors", seed=0, thin=0)
    config = replace(DeltaCell(TASK, "gtopk", 4, 0.01, "authors", seed=0).config(), epochs=1.5)
    with pytest.raises(ValueError, match="epochs must be a whole number"):
        run_delta(config, load_bundle(config), STEPS)
