"""The simulated-ranks loop against the real engine (3 gloo processes), and what it refuses.

Both run the same config and seed. The sparse methods add in the same order in both (the tree
merges of comm/gtopk.py; topk_allgather adds the sets in rank order), so their numbers must be
equal up to the order in which the P test-set parts and losses are summed. Dense S-SGD's gloo
all-reduce adds the float32 gradients in its own order, not rank order, so the replicas drift
by float32 rounding from the first step on: that comparison runs a few steps only.
"""

from __future__ import annotations

import pytest

from sparsgd.experiments.sync_batch import run_sync_batch
from sparsgd.experiments.sync_sim import run_simulated
from sparsgd.sync.config import SyncConfig
from sparsgd.sync.recipes import apply_recipe

P = 3
SUM_ORDER_RTOL = 1e-12  # float64 sums of P per-rank scores, added in another order
# float32 gradient sums in gloo's order against rank order: ~1e-7 relative per step; a few
# steps of SGD keep the test loss within a few float32 epsilons of each other
DENSE_STEPS = 4
DENSE_RTOL = 1e-5


def _config(method: str, out: str, **changes) -> SyncConfig:
    sparse = method != "dense"
    values = dict(
        out=out,
        model="fnn3",
        dataset="digits",
        hidden_size=16,
        method=method,
        density=0.002 if sparse else 1.0,
        memory="residual" if sparse else "none",
        workers=P,
        lr=0.05,
        momentum=0.9,
        batch_size=16,
        epochs=2.0,
        seed=5,
        log_every=5,
        progress=False,
    )
    values.update(changes)
    return SyncConfig(**values)


@pytest.mark.timeout(300)
@pytest.mark.multiprocess
@pytest.mark.slow
def test_simulated_ranks_equal_three_real_ranks(tmp_path):
    configs = [  # the recipes' warm-ups: lr from lr/P; k changes after epoch 1 (input check)
        apply_recipe(_config("topk", str(tmp_path / "topk")), "momentum-free", warmup_epochs=0.5),
        apply_recipe(_config("gtopk", str(tmp_path / "gtopk")), "authors", warmup_epochs=0.5),
        _config("gtopk", str(tmp_path / "stages"), density_warmup=1.0, warmup_start="0.5"),
        apply_recipe(_config("gtopk", str(tmp_path / "dgc")), "dgc", warmup_epochs=0.5),
        _config("dense", str(tmp_path / "dense"), steps=DENSE_STEPS),
    ]
    for config, real in zip(configs, run_sync_batch(configs), strict=True):
        sim = run_simulated(config)
        assert sim["diverged"] is None and real["diverged"] is None
        s, r = sim["summary"], real["summary"]
        assert s["bytes_sent_per_rank"] == r["bytes_sent_per_rank"], config.method
        assert s["dense_bytes_per_rank"] == r["dense_bytes_per_rank"]
        assert s["steps"] == r["steps"] and s["numel"] == r["numel"]
        if config.method == "dense":
            assert s["final_test_loss"] == pytest.approx(r["final_test_loss"], rel=DENSE_RTOL)
            continue
        assert len(sim["records"]) == len(real["epochs"]) == 2
        for mine, theirs in zip(sim["records"], real["epochs"], strict=True):
            assert mine["test_accuracy"] == theirs["test_accuracy"]
            assert mine["test_loss"] == pytest.approx(theirs["test_loss"], rel=SUM_ORDER_RTOL)
            assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=SUM_ORDER_RTOL)
            sent = sum(theirs["bytes_sent_total"]) / P
            assert mine["bytes_sent"] == sent


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"compressor": "randomk"}, "does not reproduce compressor='randomk'"),
        ({"clip": 1.0}, "does not reproduce clip=1.0"),
        ({"method": "gtopk_exact"}, "method must be one of"),
        ({"model": "lstm", "dataset": "synthetic-lm", "hidden_size": 8}, "trains classifiers"),
    ],
)
def test_what_the_loop_does_not_reproduce_is_refused(tmp_path, changes, message):
    method = changes.pop("method", "topk" if "compressor" in changes else "gtopk")
    with pytest.raises(ValueError, match=message):
        run_simulated(_config(method, str(tmp_path), **changes))


def test_a_run_whose_loss_stops_being_finite_stops_as_diverged(tmp_path):
    exploding = _config("gtopk", str(tmp_path), lr=1e8, warmup_epochs=0.0, epochs=4.0)
    run = run_simulated(exploding)
    assert run["diverged"] is not None and "not finite" in run["diverged"]
    assert len(run["records"]) < 4  # stopped at the first evaluation that was not finite
