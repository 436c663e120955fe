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
def launched(tmp_path_factory):
    """One launch of 2 ranks for the whole module: (hook run folder, modes run folder)."""
    import ddp_hook_workers

    hook_out = tmp_path_factory.mktemp("ddp_hook")
    modes_out = tmp_path_factory.mktemp("ddp_hook_modes")
    options = LaunchOptions(timeout_s=COLLECTIVE_TIMEOUT_S)
    launch(ddp_hook_workers.every_hook_run, WORLD, (str(hook_out), str(modes_out)), options)
    return hook_out, modes_out


@pytest.fixture(scope="module")
def results(launched):
    return [torch.load(launched[0] / f"rank-{r}.pt") for r in range(WORLD)]


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


# -- the modes: whole-model scope, dense start, overlap off, a NaN on one rank ----------------
@pytest.fixture(scope="module")
def modes(launched):
    return [torch.load(launched[1] / f"rank-{r}.pt") for r in range(WORLD)]


def _close(got, want, msg):
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=ROUNDING_TOL, msg=msg)


def test_model_scope_at_density_one_equals_default_allreduce(modes):
    for r in modes:
        for step, (got, want) in enumerate(
            zip(r["model_dense"]["grads"], r["default"]["grads"], strict=True)
        ):
            _close(got, want, f"step {step}")
        assert r["model_dense"]["calls"] == w.HOOK_STEPS  # one collective per step


def test_model_scope_selects_the_top_k_of_the_whole_model(modes):
    """Step 0 (residuals empty): the average of each rank's top-k over all d entries."""
    flat = [torch.cat([g.reshape(-1) for g in r["local"]]) for r in modes]
    k = int(0.1 * flat[0].numel())
    kept = []
    for g in flat:
        c = torch.zeros_like(g)
        top = torch.topk(g.abs(), k).indices
        c[top] = g[top]
        kept.append(c)
    want = sum(kept) / WORLD
    got = torch.cat([g.reshape(-1) for g in modes[0]["model_topk"]["grads"][0]])
    torch.testing.assert_close(got, want, rtol=0, atol=ROUNDING_TOL)
    # (DDP's first pass has one bucket; from the second on there are several, and still one
    # collective per step)
    assert modes[0]["model_topk"]["calls"] == w.HOOK_STEPS < modes[0]["bucket_topk"]["calls"]


def test_before_start_iter_the_hook_is_dense_and_keeps_no_residual(modes):
    for r in modes:
        start = r["start"]
        for step in (0, 1):
            _close(start["grads"][step], r["default"]["grads"][step], f"step {step}")
        assert start["residual_sums"][:2] == [0.0, 0.0]
        assert start["residual_sums"][2] > 0  # sparse from the third backward pass on
        assert start["calls"] == int(start["calls"]) > 0


def test_overlapping_and_inline_hooks_give_the_same_steps_bit_for_bit(modes):
    for r in modes:
        for got, want in zip(r["overlap"]["grads"], r["inline"]["grads"], strict=True):
            assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        assert r["overlap"]["residual_sums"] == r["inline"]["residual_sums"]


def test_nan_on_one_rank_fails_backward_on_every_rank_and_keeps_residuals(modes):
    for r in modes:
        nan = r["nan"]
        assert nan["error"] is not None and "finite" in nan["error"].lower(), nan["error"]
        assert len(nan["grads"]) == 1  # the first step went through, the second raised
        assert nan["residual_sums"][0] == r["overlap"]["residual_sums"][0]
        assert (
            sum(float(e.abs().sum()) for e in nan["residuals_after"].values())
            == (nan["residual_sums"][0])
        )


def test_a_failed_pass_leaves_every_residual_and_the_next_steps_as_if_it_never_ran(modes):
    """A NaN in the first bucket's gradient on rank 1 at step 1 (the later buckets finite):
    every rank raises, the later buckets' collectives do not run, and the run that goes on
    equals, bit for bit, one that skipped step 1."""
    for r in modes:
        poisoned, skipped = r["poisoned"], r["skipped"]
        assert poisoned["error"] is not None and "finite" in poisoned["error"].lower()
        assert len(poisoned["grads"]) == len(skipped["grads"]) == w.HOOK_STEPS - 1
        for got, want in zip(poisoned["grads"], skipped["grads"], strict=True):
            assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        assert len(poisoned["residual_steps"]) == w.HOOK_STEPS
        for got, want in zip(poisoned["residual_steps"], skipped["residual_steps"], strict=True):
            assert got.keys() == want.keys()
            assert all(torch.equal(got[i], want[i]) for i in got)
        assert poisoned["calls"] == skipped["calls"]  # no collective ran after the failure


def test_hook_state_refuses_bad_scope_and_start():
    with pytest.raises(ValueError, match="scope must be one of"):
        SparseHookState(w.hook_model(), "gtopk", 0.1, scope="layer")
    with pytest.raises(ValueError, match="start_iter must be >= 0"):
        SparseHookState(w.hook_model(), "gtopk", 0.1, start_iter=-1)
