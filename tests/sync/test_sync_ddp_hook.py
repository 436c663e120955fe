"""The DDP communication hook against DDP's default all-reduce (gloo, 2 processes)."""

from __future__ import annotations

import pytest
import sync_workers as w
import torch

from sparsgd.comm.launch import LaunchOptions, launch
from sparsgd.sync.ddp_hook import SparseHookState

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(180), pytest.mark.slow]
WORLD = 2
COLLECTIVE_TIMEOUT_S = 60.0
# DDP's all-reduce and the sparse collectives add the two ranks' values in possibly different
# orders and the hook divides after summing as DDP does: a float32 rounding or two
ROUNDING_TOL = 1e-6


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp_hook")
    launch(w.ddp_hook_run, WORLD, (str(out),), LaunchOptions(timeout_s=COLLECTIVE_TIMEOUT_S))
    return [torch.load(out / f"rank-{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize("method", ["topk", "gtopk"])
def test_density_one_equals_default_allreduce(results, method):
    for r in results:
        for step, (hooked, default) in enumerate(zip(r[method], r["default"], strict=True)):
            for a, b in zip(hooked, default, strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=ROUNDING_TOL, msg=f"step {step}")


def test_sparse_hook_sends_fewer_entries_and_keeps_residuals(results):
    r = results[0]
    # at density 0.1 the applied gradient differs from the dense average ...
    assert any(
        not torch.allclose(a, b) for a, b in zip(r["sparse"][0], r["default"][0], strict=True)
    )
    # ... and what was not sent waits in the residuals, for every parameter
    residuals = r["saved"]["residuals"]
    assert sorted(residuals) == list(range(len(r["default"][0])))
    assert all(float(e.abs().sum()) > 0 for e in residuals.values())
    assert r["n_buckets_calls"] > w.HOOK_STEPS  # several buckets per step
    assert results[0]["sparse"][-1][0].shape == results[1]["sparse"][-1][0].shape


def test_hook_state_round_trips(results):
    saved, reloaded = results[0]["saved"], results[0]["reloaded"]
    assert saved.keys() == reloaded.keys()
    for i, e in saved["residuals"].items():
        assert torch.equal(e, reloaded["residuals"][i])
    assert saved["bytes_sent"] == reloaded["bytes_sent"] > 0


def test_hook_state_refuses_mismatched_settings():
    state = SparseHookState(w.hook_model(), "gtopk", 0.1)
    other = SparseHookState(w.hook_model(), "topk", 0.1).state_dict()
    with pytest.raises(ValueError, match="saved with method='topk'"):
        state.load_state_dict(other)
    with pytest.raises(ValueError, match="method must be one of"):
        SparseHookState(w.hook_model(), "gtop", 0.1)
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\]; got 1.5"):
        SparseHookState(w.hook_model(), "gtopk", 1.5)
