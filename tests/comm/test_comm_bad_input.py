"""Bad input raises a clear error on every rank, never a hang, and the group still works after."""

from __future__ import annotations

import re

import comm_workers as cw
import pytest
import torch
import torch.distributed as dist

from sparsgd.comm import COLLECTIVES, make_collective
from sparsgd.comm.launch import LaunchOptions, launch
from sparsgd.compress import make_compressor
from sparsgd.sim.collectives import simulate

BAD_WORLD = 3
GROUP_TIMEOUT_S = 120.0  # far above what 3 processes need; a hang must fail, not block
OPTIONS = LaunchOptions(timeout_s=GROUP_TIMEOUT_S, threads=1)

# case -> (error type on every rank, pattern in the error of the rank that was wrong (None:
# like the others), pattern on the other ranks)
EXPECTED = {
    "numel": ("ValueError", None, r"same numel; got \[40, 40, 41\]"),
    "density": ("ValueError", r"density must be in \(0, 1\]; got 1.5", r"rank\(s\) \[1\]"),
    "k": ("ValueError", None, r"same k = .*; got \[8, 4, 4\]"),
    "nonfinite": (
        "NonFiniteError",
        r"p must be finite; got 1 NaN and 0 Inf of 40",
        r"rank\(s\) \[1\] hold NaN",
    ),
    "shape": ("ValueError", r"must be flat \(1-D\); got shape \(4, 10\)", r"rank\(s\) \[0\]"),
    "dtype": ("ValueError", None, r"same dtype code; got \[1, 1, 4\]"),
}
WRONG_RANK = {"numel": 2, "density": 1, "k": 0, "nonfinite": 1, "shape": 0, "dtype": 2}


@pytest.fixture(scope="module")
def launched() -> list[dict]:
    """Every rank's outcomes of run_bad_inputs and of run_compressor_failures (one launch)."""
    return launch(cw.run_every_bad_input, BAD_WORLD, (), OPTIONS, deadline_s=GROUP_TIMEOUT_S)


@pytest.fixture(scope="module")
def outcomes(launched) -> list[dict]:
    return [o["inputs"] for o in launched]


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(COLLECTIVES))
@pytest.mark.parametrize("case", list(EXPECTED))
def test_every_rank_raises_and_the_group_survives(outcomes, name, case):
    kind, own_pattern, other_pattern = EXPECTED[case]
    for rank, outcome in enumerate(outcomes):
        got_kind, message = outcome[f"{name}/{case}"]["error"]
        assert got_kind == kind, (rank, message)
        wrong = rank == WRONG_RANK[case] and own_pattern is not None
        assert re.search(own_pattern if wrong else other_pattern, message), (rank, message)
        assert name in message  # the error says which collective refused
    # a valid call right after: every rank got the same total, and dense got the exact sum
    totals = [o[f"{name}/{case}"]["total_after"] for o in outcomes]
    assert all(torch.equal(t, totals[0]) for t in totals)
    if name == "dense":
        expected = sum(torch.arange(cw.BAD_NUMEL, dtype=torch.float32) - r for r in range(3))
        assert torch.equal(totals[0], expected)


@pytest.mark.multiprocess
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(COLLECTIVES))
def test_a_density_changed_on_every_rank_is_adopted_not_refused(outcomes, name):
    goods = [torch.arange(cw.BAD_NUMEL, dtype=torch.float32) - r for r in range(BAD_WORLD)]
    for call, density in enumerate(cw.SCHEDULE):
        reference = simulate(name, goods, density, first_call=call == 0)
        for rank, outcome in enumerate(outcomes):
            got = outcome[f"{name}/schedule"][call]
            assert torch.equal(got["residual"], reference[rank].residual), (call, rank)
            # small integers: every sum is exact in any order, so even dense is bit for bit
            assert torch.equal(got["total"], reference[rank].total), (call, rank)
            handshakes = {0: 1, 1: 1, 2: 0}[call]  # first call; the change of k; steady state
            assert got["stats"]["check_messages_sent"] == handshakes * (BAD_WORLD - 1)
            if call == 2:  # steady state again: every count equals the reference
                for field in ("messages_sent", "bytes_sent", "messages_recv", "bytes_recv"):
                    assert got["stats"][field] == getattr(reference[rank].stats, field)


def test_no_process_group_is_a_clear_error():
    assert not dist.is_initialized()
    for name in COLLECTIVES:
        with pytest.raises(
            RuntimeError, match=r"needs an initialised torch\.distributed process group"
        ):
            make_collective(name)


def test_unknown_collective_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown collective 'gtop'; valid names: \['dense'"):
        make_collective("gtop")


@pytest.mark.parametrize(
    ("name", "compressor"),
    [
        ("dense", make_compressor("topk")),
        ("gtopk", make_compressor("randomk")),
        ("gtopk_exact", make_compressor("topk", value_dtype=torch.float16)),
    ],
)
def test_a_compressor_a_collective_cannot_honour_is_refused_at_build_time(name, compressor):
    with pytest.raises(ValueError, match=f"{name} does its own selection"):
        make_collective(name, compressor=compressor)


# case -> (error on the rank whose compressor raised, error on the others): type and pattern
COMPRESSOR_FAILURES = {
    "fp16_overflow": (
        ("NonFiniteError", r"values must be finite in torch.float16"),
        ("NonFiniteError", r"topk_allgather: the compressor of rank\(s\) \[1\] produced NaN"),
    ),
    "raises": (
        ("RuntimeError", r"injected compressor failure on rank 1"),
        ("ValueError", r"topk_allgather: the compressor of rank\(s\) \[1\] raised"),
    ),
}


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
def test_a_compressor_raising_on_one_rank_raises_everywhere_without_a_hang(launched):
    outcomes = [o["compressors"] for o in launched]
    goods = [o["all_empty"]["p"] for o in outcomes]  # each rank's valid input
    for case, (own, others) in COMPRESSOR_FAILURES.items():
        for rank, outcome in enumerate(outcomes):
            kind, pattern = own if rank == cw.COMPRESSOR_BAD_RANK else others
            got_kind, message = outcome[case]["error"]
            assert got_kind == kind, (case, rank, message)
            assert re.search(pattern, message), (case, rank, message)
        totals = [o[case]["total_after"] for o in outcomes]
        assert all(torch.equal(t, totals[0]) for t in totals)
        assert torch.equal(totals[0], simulate("topk_allgather", goods, cw.BAD_DENSITY)[0].total)
    for outcome in outcomes:  # every set empty: nothing applied, everything kept
        empty = outcome["all_empty"]
        assert not bool(empty["total"].any())
        assert torch.equal(empty["residual"], empty["p"])
