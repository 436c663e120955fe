"""dense with p written into its staging view: the same bits, bytes and errors as a copied p.

Three real ranks call two dense collectives side by side on the same inputs, one with p in a
tensor of its own (copied into the all-reduce buffer), one with p written into
``staging(d)`` first (reduced in place). The worker functions are in this module, at module
level, so that the spawned ranks find them.
"""

from __future__ import annotations

import math

import nonfinite_workers as nw
import pytest
import torch

from sparsgd.comm import make_collective
from sparsgd.comm.launch import LaunchOptions, WorkerContext, launch
from sparsgd.compress.checks import NonFiniteError

WORLD = nw.WORLD  # 3: the backend adds three values per entry
NUMEL = nw.NUMEL
DENSITY = nw.DENSITY
OTHER_DENSITY = 2 * DENSITY  # a different k: a signature change
STEPS = 3  # the later calls meet the reused buffer
GROUP_TIMEOUT_S = 120.0  # far above what 3 processes need; a hang must fail, not block
OPTIONS = LaunchOptions(timeout_s=GROUP_TIMEOUT_S, threads=1)
ERRORS = (ValueError, TypeError, NonFiniteError, RuntimeError)


def _p(rank: int, step: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(7000 + 100 * step + rank)
    return torch.randn(NUMEL, generator=gen)


def _call(collective, p: torch.Tensor, density: float) -> dict:
    """The call's total (a copy) and counts, or the error it raised."""
    try:
        red = collective.reduce(p, density)
    except ERRORS as exc:
        return {"error": (type(exc).__name__, str(exc))}
    s = red.stats
    return {
        "error": ("none", ""),
        "total": red.total.clone(),
        "residual_zero": not bool(red.residual.any()),
        "sent_all": torch.equal(red.sent, torch.arange(NUMEL)),
        "counts": (s.bytes_sent, s.bytes_recv, s.messages_sent, s.messages_recv),
        "total_ptr": red.total.data_ptr(),
    }


def _staged(collective, p: torch.Tensor) -> torch.Tensor:
    view = collective.staging(p.numel(), p.dtype)
    view.copy_(p)
    return view


def run_steady(ctx: WorkerContext) -> dict:
    """STEPS calls each way on the same inputs; where the staged total lives."""
    copied, staged = make_collective("dense"), make_collective("dense")
    out = {"copied": [], "staged": [], "view_ptr": []}
    for step in range(STEPS):
        p = _p(ctx.rank, step)
        out["copied"].append(_call(copied, p.clone(), DENSITY))
        view = _staged(staged, p)
        out["view_ptr"].append(view.data_ptr())
        out["staged"].append(_call(staged, view, DENSITY))
        out["staged"][-1]["view_is_total"] = torch.equal(view, out["staged"][-1]["total"])
    return out


def run_failures(ctx: WorkerContext) -> dict:
    """Each bad case copied and staged, then a valid call; a density change made together."""
    out = {}
    copied, staged = make_collective("dense"), make_collective("dense")
    good = nw.good(ctx.rank)
    copied.reduce(good.clone(), DENSITY)  # agree the signature first: the steady state
    staged.reduce(_staged(staged, good), DENSITY)
    cases = dict(nw.cases(ctx.rank))
    apart = good.clone()  # huge entries at different positions: the bound M overflows, S not
    apart[ctx.rank] = nw.HUGE
    cases["dense_apart"] = apart
    mismatch = OTHER_DENSITY if ctx.rank == 1 else DENSITY
    for case, p in cases.items():
        copied_call = _call(copied, p.clone(), DENSITY)
        view = _staged(staged, p)
        staged_call = _call(staged, view, DENSITY)
        # kept and put back (NaN where p has NaN), or not
        staged_call["view_holds_p"] = torch.allclose(view, p, rtol=0, atol=0, equal_nan=True)
        out[case] = {
            "copied": copied_call,
            "staged": staged_call,
            "copied_after": _call(copied, good.clone(), DENSITY),
            "staged_after": _call(staged, _staged(staged, good), DENSITY),
        }
    out["not_tensor"] = _call(copied, good.tolist() if ctx.rank == 2 else good.clone(), DENSITY)
    out["mismatch"] = {  # rank 1 asks for another k: every rank raises the same error
        "copied": _call(copied, good.clone(), mismatch),
        "staged": _call(staged, _staged(staged, good), mismatch),
    }
    view = _staged(staged, good)  # every rank changes k together: adopted, the call retried
    out["schedule"] = {
        "copied": _call(copied, good.clone(), OTHER_DENSITY),
        "staged": _call(staged, view, OTHER_DENSITY),
    }
    return out


def run_bad_staging(ctx: WorkerContext) -> dict:
    collective = make_collective("dense")
    out = {}
    for case, args in {"zero": (0, torch.float32), "int": (10, torch.int64)}.items():
        try:
            collective.staging(*args)
            out[case] = ("none", "")
        except (ValueError, TypeError) as exc:
            out[case] = (type(exc).__name__, str(exc))
    return out


@pytest.fixture(scope="module")
def steady() -> list[dict]:
    return launch(run_steady, WORLD, (), OPTIONS, deadline_s=GROUP_TIMEOUT_S)


@pytest.fixture(scope="module")
def failures() -> list[dict]:
    return launch(run_failures, WORLD, (), OPTIONS, deadline_s=GROUP_TIMEOUT_S)


pytestmark = [pytest.mark.slow, pytest.mark.multiprocess, pytest.mark.timeout(300)]


def test_a_staged_p_gives_the_bits_and_counts_of_a_copied_one(steady):
    for rank, out in enumerate(steady):
        for step, (copied, staged) in enumerate(zip(out["copied"], out["staged"], strict=True)):
            assert copied["error"] == staged["error"] == ("none", ""), (rank, step)
            assert torch.equal(staged["total"], copied["total"]), (rank, step)
            assert torch.equal(staged["total"], steady[0]["staged"][step]["total"]), (rank, step)
            assert staged["counts"] == copied["counts"], (rank, step)
            assert staged["residual_zero"] and staged["sent_all"], (rank, step)


def test_the_staged_total_is_reduced_in_the_view_itself_with_no_copy(steady):
    for out in steady:
        ptrs = out["view_ptr"]
        assert ptrs == [ptrs[0]] * STEPS  # one buffer reused by every call
        for call in out["staged"]:
            assert call["total_ptr"] == ptrs[0] and call["view_is_total"]


def test_counts_follow_the_ring_formula_with_the_status_element(steady):
    chunk = math.ceil((NUMEL + 1) / WORLD)  # d + 1 values: the status element included
    ring = 2 * (WORLD - 1)
    for out in steady:
        assert out["staged"][-1]["counts"] == (ring * chunk * 4, ring * chunk * 4, ring, ring)


@pytest.mark.parametrize(
    "case",
    [
        "spread",
        "cancel",
        "overflow",
        "overflow_late",
        "exact_overflow",
        "dense_large",
        "dense_apart",
    ],
)
def test_a_staged_bad_input_raises_what_a_copied_one_raises_on_every_rank(failures, case):
    raised = 0
    for rank, out in enumerate(failures):
        copied, staged = out[case]["copied"], out[case]["staged"]
        assert staged["error"] == copied["error"], (rank, case)
        raised += staged["error"][0] != "none"
        if staged["error"][0] == "none":  # three 1e38, or one 3e38 per entry: finite sums
            assert torch.equal(staged["total"], copied["total"]), rank
        after = out[case]["staged_after"]
        assert after["error"] == ("none", ""), (rank, case)  # the group still works
        assert torch.equal(after["total"], out[case]["copied_after"]["total"]), (rank, case)
    assert raised == (0 if case in ("dense_large", "dense_apart") else WORLD)


def test_a_rank_that_flagged_gets_its_staged_p_back(failures):
    # spread: ranks 1 and 2 hold NaN / -Inf and flag; rank 0 flagged nothing, and its view
    # holds zeros (the handshake reads it as the finite p it was), not its p
    for rank, out in enumerate(failures):
        assert out["spread"]["staged"]["view_holds_p"] == (rank in (1, 2)), rank


def test_a_density_mismatch_on_one_staged_rank_raises_the_same_error_everywhere(failures):
    for rank, out in enumerate(failures):
        copied, staged = out["mismatch"]["copied"], out["mismatch"]["staged"]
        assert staged["error"][0] == "ValueError", (rank, staged["error"])
        assert staged["error"] == copied["error"], rank
        assert "every rank must pass the same k" in staged["error"][1]


def test_a_density_changed_by_every_staged_rank_is_adopted_and_the_call_retried(failures):
    for rank, out in enumerate(failures):
        copied, staged = out["schedule"]["copied"], out["schedule"]["staged"]
        assert copied["error"] == staged["error"] == ("none", ""), rank
        assert torch.equal(staged["total"], copied["total"]), rank  # p_i put back, then sent
        assert staged["counts"] == copied["counts"], rank  # the handshake included


def test_staging_refuses_a_bad_size_or_dtype():
    (out,) = launch(run_bad_staging, 1, (), OPTIONS, deadline_s=GROUP_TIMEOUT_S)
    assert out["zero"][0] == "ValueError" and "numel" in out["zero"][1]
    assert out["int"][0] == "TypeError" and "torch.int64" in out["int"][1]


def test_a_rank_passing_no_tensor_in_the_steady_state_raises_with_every_other_rank(failures):
    for rank, out in enumerate(failures):
        kind, message = out["not_tensor"]["error"]
        if rank == 2:
            assert kind == "TypeError" and "p must be a torch.Tensor; got list" in message
        else:
            assert kind == "ValueError" and "rank(s) [2] passed invalid input" in message
