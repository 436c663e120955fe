"""Worker of the NaN/Inf tests: inputs where the finiteness test rides on the exchange.

Module level so that spawned children find it. Every case starts on a collective that has
already agreed its signature (the steady state: no handshake before the exchange), so the
NaN, Inf or overflow must be found by the exchange itself: the exact top-k of the sparse
collectives and their merges or sums, dense's aminmax of p and the max |p| it carries in its
status element (comm/base.py, (2a) and (2b)).
"""

from __future__ import annotations

import torch

from sparsgd.comm import COLLECTIVES, make_collective
from sparsgd.comm.launch import WorkerContext
from sparsgd.compress.checks import NonFiniteError
from sparsgd.compress.topk import FAST_MIN_NUMEL, sample_positions

WORLD = 3
NUMEL = FAST_MIN_NUMEL + 123  # the sampled fast path of the exact top-k
DENSITY = 1e-3
K = int(DENSITY * NUMEL)
SAMPLED = sample_positions(NUMEL, K).start  # read by the sample of the fast path
UNSAMPLED = SAMPLED + 1  # read by the candidates pass only
HUGE = 3e38  # float32: finite, but two of them overflow (largest finite ~3.4e38)
LARGE = 1e38  # float32: three of them stay finite, NUMEL of them do not
C_SLICE = slice(1000, 1000 + K - 1)  # positions of exact_overflow, apart from 7, 11 and
J, D = 5000, 6000  # the sample's SAMPLED / UNSAMPLED


def good(rank: int) -> torch.Tensor:
    """A finite p of rank ``rank``: distinct magnitudes, a different top-k on every rank."""
    gen = torch.Generator().manual_seed(100 + rank)
    return torch.randn(NUMEL, generator=gen)


def cases(rank: int) -> dict[str, torch.Tensor]:
    """case -> this rank's p. The dense-only cases are named ``dense_*``."""
    p = good(rank)
    spread, cancel, huge = p.clone(), p.clone(), p.clone()
    if rank == 1:
        spread[UNSAMPLED] = float("nan")  # only the candidates pass sees it
    if rank == 2:
        spread[SAMPLED] = float("-inf")  # the sample sees it
    if rank in (0, 2):  # +Inf and -Inf at one position: NaN in dense's sum
        cancel[7] = float("inf") if rank == 0 else float("-inf")
    huge[11] = HUGE  # every rank finite, their sum is not (gTop-k: in rank 0's first merge)
    late = p.clone()
    if rank in (1, 2):  # gTop-k: rank 0's first merge is finite, its second overflows
        late[11] = HUGE
    return {
        "spread": spread,
        "cancel": cancel,
        "overflow": huge,
        "overflow_late": late,
        "exact_overflow": exact_overflow(rank, p.clone()),
        "dense_large": torch.full((NUMEL,), LARGE),
    }


def exact_overflow(rank: int, p: torch.Tensor) -> torch.Tensor:
    """A p whose tree merges stay finite but whose exact sum at a global index does not.

    Rank 0 selects J (2e38) and the K - 1 entries of C (-3.2e38); rank 1 selects C (+3.2e38,
    cancelling rank 0's to 0 in the merge) and D (2.1e38), but not its own 2e38 at J, the
    (K+1)-th. The merged set keeps D and J: gtopk applies rank 0's 2e38 at J, while the exact
    all-reduce of gtopk_exact (and dense's sum) adds rank 1's 2e38 too and overflows."""
    if rank == 0:
        p[C_SLICE], p[J] = -3.2e38, 2e38
    if rank == 1:
        p[C_SLICE], p[D], p[J] = 3.2e38, 2.1e38, 2e38
    return p


def run_nonfinite(ctx: WorkerContext) -> dict[str, dict]:
    """Per collective and case: the error this rank got (or the total), then a valid call's
    total (the group must still work)."""
    out: dict[str, dict] = {}
    for name in COLLECTIVES:
        collective = make_collective(name)
        collective.reduce(good(ctx.rank), DENSITY)  # agree the signature first
        for case, p in cases(ctx.rank).items():
            if case == "dense_large" and name != "dense":
                continue
            error, total = ("none", ""), None
            try:
                total = collective.reduce(p, DENSITY).total.clone()
            except (ValueError, NonFiniteError) as exc:
                error = (type(exc).__name__, str(exc))
            after = collective.reduce(good(ctx.rank), DENSITY).total.clone()
            out[f"{name}/{case}"] = {"error": error, "total": total, "total_after": after}
    return out
