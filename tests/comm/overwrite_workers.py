"""Worker of the hand-over tests: ``reduce(p, density, overwrite=True)`` against the default.

Module level so that spawned children find it.
"""

from __future__ import annotations

import torch

from sparsgd.comm import COLLECTIVES, make_collective
from sparsgd.comm.launch import WorkerContext
from sparsgd.compress import make_compressor
from sparsgd.compress.topk import FAST_MIN_NUMEL

WORLD = 3
# name -> (numel, density): the small exact path and the sampled fast path of the top-k
SIZES = {"small": (600, 0.03), "fast": (FAST_MIN_NUMEL + 123, 1e-3)}
STEPS = 2  # the second call meets reused buffers
SETUPS = [(name, None) for name in COLLECTIVES] + [("topk_allgather", "threshold")]


def p_of(rank: int, step: int, numel: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randn(numel, generator=gen)


def run_overwrite(ctx: WorkerContext) -> dict[str, list[dict]]:
    """Per setup and size, per step: both calls' results, and what happened to ``p``."""
    out: dict[str, list[dict]] = {}
    for name, compressor in SETUPS:
        for size, (numel, density) in SIZES.items():
            build = {"compressor": make_compressor(compressor, threshold=1.5)} if compressor else {}
            keep, hand = make_collective(name, **build), make_collective(name, **build)
            steps = []
            for step in range(STEPS):
                p = p_of(ctx.rank, step, numel)
                kept_p, handed_p = p.clone(), p.clone()
                a = keep.reduce(kept_p, density)
                a_out = {f: getattr(a, f).clone() for f in ("total", "residual", "sent")}
                b = hand.reduce(handed_p, density, overwrite=True)
                steps.append(
                    {
                        "default": a_out,
                        "handed": {f: getattr(b, f).clone() for f in ("total", "residual", "sent")},
                        "default_p_unchanged": torch.equal(kept_p, p),
                        "residual_in_p": b.residual.data_ptr() == handed_p.data_ptr(),
                        "handed_p_is_residual": torch.equal(handed_p, b.residual),
                        "bytes": (a.stats.bytes_sent, b.stats.bytes_sent),
                        "messages": (a.stats.messages_sent, b.stats.messages_sent),
                    }
                )
            out[f"{name}/{compressor}/{size}"] = steps
    return out
