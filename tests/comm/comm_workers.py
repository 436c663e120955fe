"""Worker functions and inputs for the multi-process collective tests.

Module level so that spawned children find them. Inputs are a pure function of
(P, group rank, step, numel), so the parent regenerates them for the one-process reference.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from sparsgd.comm import COLLECTIVES, make_collective
from sparsgd.comm.launch import WorkerContext
from sparsgd.compress import make_compressor
from sparsgd.compress.checks import NonFiniteError

# name -> (numel, density): "wide" has few shared indices, "crowded" has k * P > d so that the
# local sets overlap heavily and most merges both add values and drop entries.
SPECS = {"wide": (600, 0.03), "crowded": (48, 0.25)}
# P -> members of the group (global ranks of an 8-process world); None: the default group.
# Members are not contiguous, so group ranks differ from global ranks.
GROUPS: dict[int, list[int] | None] = {
    1: [6],
    2: [3, 7],
    3: [1, 4, 6],
    4: [0, 2, 5, 7],
    5: [0, 2, 3, 5, 7],
    6: [1, 2, 3, 5, 6, 7],
    7: [1, 2, 3, 4, 5, 6, 7],
    8: None,
}
# topk_allgather with a compressor (spec "wide"): threshold gives a different number of entries
# on every rank (the padded path); topk with float16 values gives 6-byte entries.
COMPRESSED = {
    "threshold": ("threshold", {"threshold": 1.5}),
    "topk_fp16": ("topk", {"value_dtype": torch.float16}),
}
WORLD = 8
STEPS = 2  # step 1 feeds step 0's residual back: p = e + g


def gradient(world: int, rank: int, step: int, numel: int) -> torch.Tensor:
    """Step 0: values on a grid of 0.5 (many exact ties, within and across ranks);
    later steps: Gaussian."""
    gen = torch.Generator().manual_seed(1_000_003 * world + 10_007 * rank + 101 * step + numel)
    if step == 0:
        return torch.randint(-4, 5, (numel,), generator=gen).to(torch.float32) / 2
    return torch.randn(numel, generator=gen)


def run_every_collective(ctx: WorkerContext) -> dict[str, list[dict]]:
    """For every group of GROUPS this rank belongs to, every spec and collective: STEPS steps."""
    rank = ctx.rank
    out: dict[str, list[dict]] = {}
    for size, members in GROUPS.items():
        group = None if members is None else dist.new_group(members)  # every rank must call it
        if members is not None and rank not in members:
            continue
        group_rank = dist.get_rank(group)
        for spec, (numel, density) in SPECS.items():
            for name in COLLECTIVES:
                collective = make_collective(name, group)
                out[f"{size}/{spec}/{name}"] = _steps(collective, size, group_rank, numel, density)
        numel, density = SPECS["wide"]
        for variant, (compressor, settings) in COMPRESSED.items():
            collective = make_collective(
                "topk_allgather", group, make_compressor(compressor, **settings)
            )
            key = f"{size}/wide/topk_allgather+{variant}"
            out[key] = _steps(collective, size, group_rank, numel, density)
    return out


def _steps(collective, size, group_rank, numel, density) -> list[dict]:
    residual = torch.zeros(numel)
    steps = []
    for step in range(STEPS):
        p = residual + gradient(size, group_rank, step, numel)
        reduced = collective.reduce(p, density)
        steps.append(  # the collective reuses its buffers: keep copies
            {
                "p": p,
                "total": reduced.total.clone(),
                "residual": reduced.residual.clone(),
                "sent": reduced.sent.clone(),
                "stats": reduced.stats.as_dict(),
            }
        )
        residual = steps[-1]["residual"]
    return steps


# --- bad input: every rank must raise, none may hang -------------------------------------

BAD_NUMEL = 40
BAD_DENSITY = 0.1


def _bad_cases(rank: int) -> dict[str, tuple[torch.Tensor, float]]:
    """case -> (p, density) on this rank; in each case only some ranks are wrong."""
    good = torch.arange(BAD_NUMEL, dtype=torch.float32) - rank
    nan = good.clone()
    nan[3] = float("nan")
    return {
        "numel": (torch.ones(BAD_NUMEL + 1) if rank == 2 else good, BAD_DENSITY),
        "density": (good, 1.5 if rank == 1 else BAD_DENSITY),
        "k": (good, 2 * BAD_DENSITY if rank == 0 else BAD_DENSITY),
        "nonfinite": (nan if rank == 1 else good, BAD_DENSITY),
        "shape": (good.reshape(4, 10) if rank == 0 else good, BAD_DENSITY),
        "dtype": (good.double() if rank == 2 else good, BAD_DENSITY),
    }


# densities of successive valid calls on one collective: k changes on every rank together
# (a density schedule), so the second call's exchange is flagged, the handshake adopts the new
# k and the call is made again; the third is a plain call again
SCHEDULE = (BAD_DENSITY, 2 * BAD_DENSITY, 2 * BAD_DENSITY)


def run_bad_inputs(ctx: WorkerContext) -> dict[str, dict]:
    """Each case on each collective: the error this rank got, then a valid call's total.

    The first case meets a collective's first call (the handshake raises); the later ones
    meet the steady state (the flag rides in the payload, then the handshake raises). Last,
    each collective runs SCHEDULE on valid input.
    """
    rank = ctx.rank
    out = {}
    good = torch.arange(BAD_NUMEL, dtype=torch.float32) - rank
    for name in COLLECTIVES:
        collective = make_collective(name)
        for case, (p, density) in _bad_cases(rank).items():
            try:
                collective.reduce(p, density)
                error = ("none", "")
            except (ValueError, TypeError, NonFiniteError) as exc:
                error = (type(exc).__name__, str(exc))
            after = collective.reduce(good, BAD_DENSITY)  # the group must still work
            out[f"{name}/{case}"] = {"error": error, "total_after": after.total.clone()}
        fresh = make_collective(name)
        out[f"{name}/schedule"] = [_kept(fresh.reduce(good, density)) for density in SCHEDULE]
    return out


def _kept(reduced) -> dict:
    """Copies of a result (the collective reuses its buffers)."""
    return {
        "total": reduced.total.clone(),
        "residual": reduced.residual.clone(),
        "stats": reduced.stats.as_dict(),
    }


# --- the launcher itself -------------------------------------------------------------------


def fail_on_rank_1(ctx: WorkerContext) -> int:
    """Rank 1 raises at once; the others wait in a barrier that can never complete."""
    rank = ctx.rank
    if rank == 1:
        raise ZeroDivisionError("injected failure on rank 1")
    dist.barrier()
    return rank


def sleep_forever(ctx: WorkerContext) -> None:
    import time

    time.sleep(3600)


# --- a compressor that raises on one rank only, after the input check passed -------------


class FailsOnRank:
    """A real compressor (exact top-k) that raises on ``bad_rank`` only."""

    name = "fails_on_rank"

    def __init__(self, rank: int, bad_rank: int) -> None:
        self.rank, self.bad_rank = rank, bad_rank
        self.inner = make_compressor("topk")

    def compress(self, x: torch.Tensor, density: float):
        if self.rank == self.bad_rank:
            raise RuntimeError(f"injected compressor failure on rank {self.rank}")
        return self.inner.compress(x, density)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


COMPRESSOR_BAD_RANK = 1
F16_TOO_LARGE = 1e5  # above float16's largest finite value, 65504


def run_compressor_failures(ctx: WorkerContext) -> dict[str, dict]:
    """topk_allgather whose compressor raises on one rank: the error every rank got, then a
    valid call's total (the group must still work); and a call where every set is empty."""
    rank = ctx.rank
    good = torch.arange(BAD_NUMEL, dtype=torch.float32) - rank
    big = good.clone()
    big[0] = F16_TOO_LARGE
    cases = {
        "fp16_overflow": (
            make_compressor("topk", value_dtype=torch.float16),
            big if rank == COMPRESSOR_BAD_RANK else good,
        ),
        "raises": (FailsOnRank(rank, COMPRESSOR_BAD_RANK), good),
    }
    out: dict[str, dict] = {}
    for case, (compressor, p) in cases.items():
        collective = make_collective("topk_allgather", compressor=compressor)
        try:
            collective.reduce(p, BAD_DENSITY)
            error = ("none", "")
        except (ValueError, RuntimeError, NonFiniteError) as exc:
            error = (type(exc).__name__, str(exc))
        after = make_collective("topk_allgather").reduce(good, BAD_DENSITY)
        out[case] = {"error": error, "total_after": after.total.clone()}
    nothing = make_compressor("threshold", threshold=1e9)  # no entry reaches it on any rank
    empty = make_collective("topk_allgather", compressor=nothing).reduce(good, BAD_DENSITY)
    out["all_empty"] = {"total": empty.total, "residual": empty.residual, "p": good}
    return out


def run_every_bad_input(ctx: WorkerContext) -> dict[str, dict]:
    """Both runs of the bad-input tests in one launch, one after the other on the same group:
    ``run_bad_inputs``, then ``run_compressor_failures``."""
    return {"inputs": run_bad_inputs(ctx), "compressors": run_compressor_failures(ctx)}
