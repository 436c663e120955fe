"""NaN, Inf and overflow found by the exchange itself, in the steady state, on every rank.

The sparse collectives learn that p is not finite from their exact top-k (no pass of its
own), dense from its aminmax of p, whose max |p| rides in its status element (comm/base.py,
(2a) and (2b)). Either way every rank raises, the rank at fault with its own count, and the
group still works after. Finite inputs whose sum overflows raise on every rank too, wherever
the sum is made: dense's all-reduce, gTop-k's merges (at the root's first or second merge),
gtopk_exact's all-reduce of the k global values, topk_allgather's sum of the sets.
"""

from __future__ import annotations

import math
import re

import nonfinite_workers as nw
import pytest
import torch

from sparsgd.comm import COLLECTIVES
from sparsgd.comm.launch import LaunchOptions, launch
from sparsgd.sim.collectives import simulate

GROUP_TIMEOUT_S = 120.0  # far above what 3 processes need; a hang must fail, not block
OPTIONS = LaunchOptions(timeout_s=GROUP_TIMEOUT_S, threads=1)
# dense and gtopk_exact sum 3 standard-normal values per entry in the backend's order, not the
# reference's. Below SUM_BOUND (asserted) a float32 ulp is at most 2^-19, each order rounds
# twice (at most 1 ulp off the exact sum), so two orders differ by at most 2 ulps
SUM_BOUND = 16.0
SUM_ORDER_ATOL = 2 * 2.0**-19
ORDER_FREE = {"gtopk", "topk_allgather"}  # one addition per entry: the same bits in any order

# case -> {rank: pattern of its own error}, pattern on the other ranks
NONFINITE = {
    "spread": (
        {1: r"p must be finite; got 1 NaN and 0 Inf", 2: r"p must be finite; got 0 NaN and 1 Inf"},
        r"rank\(s\) \[1, 2\] hold NaN or Inf",
    ),
    "cancel": (
        {0: r"p must be finite; got 0 NaN and 1 Inf", 2: r"p must be finite; got 0 NaN and 1 Inf"},
        r"rank\(s\) \[0, 2\] hold NaN or Inf",
    ),
}


@pytest.fixture(scope="module")
def outcomes() -> list[dict]:
    return launch(nw.run_nonfinite, nw.WORLD, (), OPTIONS, deadline_s=GROUP_TIMEOUT_S)


def goods() -> list[torch.Tensor]:
    return [nw.good(rank) for rank in range(nw.WORLD)]


def assert_group_survived(outcomes: list[dict], key: str, name: str) -> None:
    """The valid call after the error gives the one-process reference's total on every rank."""
    inputs = goods()
    assert float(sum(p.abs() for p in inputs).max()) < SUM_BOUND  # every partial sum too
    reference = simulate(name, inputs, nw.DENSITY, first_call=False)
    for rank, outcome in enumerate(outcomes):
        got, want = outcome[key]["total_after"], reference[rank].total
        if name in ORDER_FREE:
            assert torch.equal(got, want), (key, rank)
        else:
            assert torch.equal(got != 0, want != 0), (key, rank)  # the same entries applied
            torch.testing.assert_close(got, want, rtol=0, atol=SUM_ORDER_ATOL)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(COLLECTIVES))
@pytest.mark.parametrize("case", list(NONFINITE))
def test_nan_or_inf_on_some_ranks_raises_on_every_rank(outcomes, name, case):
    own, others = NONFINITE[case]
    for rank, outcome in enumerate(outcomes):
        kind, message = outcome[f"{name}/{case}"]["error"]
        assert kind == "NonFiniteError", (rank, message)
        assert re.search(own.get(rank, others), message), (rank, message)
        assert name in message
    assert_group_survived(outcomes, f"{name}/{case}", name)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(COLLECTIVES))
@pytest.mark.parametrize("case", ["overflow", "overflow_late"])
def test_finite_inputs_whose_sum_overflows_raise_on_every_rank(outcomes, name, case):
    huge = torch.tensor(nw.HUGE)  # the case is what it claims: finite, two of them are not
    assert math.isfinite(float(huge)) and math.isinf(float(huge * 2))
    for rank, outcome in enumerate(outcomes):
        kind, message = outcome[f"{name}/{case}"]["error"]
        assert kind == "NonFiniteError", (rank, message)
        assert re.search(rf"{name}: every rank's p is finite but their sum overflows", message)
    assert_group_survived(outcomes, f"{name}/{case}", name)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(COLLECTIVES))
def test_an_overflow_only_the_exact_sum_makes(outcomes, name):
    """gtopk's merges and topk_allgather's sets stay finite (no error, a finite total);
    gtopk_exact's all-reduce of the k global values and dense's sum overflow: all raise."""
    for rank, outcome in enumerate(outcomes):
        kind, message = outcome[f"{name}/exact_overflow"]["error"]
        if name in ("gtopk", "topk_allgather"):
            assert kind == "none", (rank, message)
            total = outcome[f"{name}/exact_overflow"]["total"]
            assert bool(total.isfinite().all()), rank
            assert float(total[nw.J]) == float(torch.tensor(2e38)), rank  # rank 0's value alone
        else:
            assert kind == "NonFiniteError", (rank, message)
            where = " at the k global indices" if name == "gtopk_exact" else ""
            assert f"{name}: every rank's p is finite but their sum overflows" in message
            assert message.endswith(where), message
    assert_group_survived(outcomes, f"{name}/exact_overflow", name)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
def test_dense_a_finite_total_whose_own_sum_overflows_is_no_error(outcomes):
    x = torch.full((nw.NUMEL,), nw.LARGE)
    expected = x + x + x  # identical addends: every summation order gives these bits
    assert math.isinf(float(expected.sum())) and bool(expected.isfinite().all())
    for rank, outcome in enumerate(outcomes):
        assert outcome["dense/dense_large"]["error"] == ("none", ""), rank
        assert torch.equal(outcome["dense/dense_large"]["total"], expected), rank
