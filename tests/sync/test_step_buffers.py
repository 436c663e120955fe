"""SyncSGD's reused buffers on P = 3 real processes: the bits of the step spelled out plainly.

Every rank trains two copies of the tiny model side by side on the same gradients: one with
SyncSGD (the flat gradient in a reused buffer, dense's staging view, R.total / P written into
the gradients), one with the step written out with fresh tensors, its own collective and
memory. The worker functions are in this module, at module level, so the spawned ranks find
them.
"""

from __future__ import annotations

import pytest
import sync_workers as w
import torch

from sparsgd.comm.launch import LaunchOptions, WorkerContext, launch
from sparsgd.worker.flat_model import flat_params

WORLD = 3
COLLECTIVE_TIMEOUT_S = 120.0  # far above what 3 processes need; a hang must fail, not block
CLIP = 0.05  # below the tiny model's gradient norms: clipping scales g at every step
# (collective, memory, clip): dense with memory none is staged; with residual it is copied
SETUPS = [
    ("dense", "none", None),
    ("dense", "residual", None),
    ("dense", "none", CLIP),
    ("gtopk", "none", None),
    ("gtopk", "residual", CLIP),
    ("topk_allgather", "dgc", None),
]
NAN_SETUPS = [("dense", "none"), ("dense", "residual"), ("gtopk", "none")]


class Spy:
    """A collective that records where each ``p`` it is given lives, then passes it on."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.p_ptrs = inner, inner.name, []
        if hasattr(inner, "staging"):
            self.staging = inner.staging

    def reduce(self, p, density, *, overwrite=False):
        self.p_ptrs.append(p.data_ptr())
        return self.inner.reduce(p, density, overwrite=overwrite)


def spelled_out_step(params, optimizer, collective, memory, clip) -> None:
    """(1)-(7) of sync/step.py with a fresh tensor for every quantity."""
    from sparsgd.worker.flat_model import flat_grad, write_grad_

    g = flat_grad(params)
    if clip is not None:
        norm = float(torch.linalg.vector_norm(g))
        g = g * (clip / norm) if norm > clip else g
    reduced = collective.reduce(memory.compensate(g), w.TINY_DENSITY, overwrite=True)
    memory.update_(reduced.residual, reduced.sent)
    write_grad_(params, reduced.total / WORLD)
    optimizer.step()


def run_twins(ctx: WorkerContext) -> dict:
    from sparsgd.comm import make_collective
    from sparsgd.compress import make_memory
    from sparsgd.sync.step import SyncSGD

    out = {}
    for name, memory_name, clip in SETUPS:
        a, b = w.tiny_model(), w.tiny_model()
        pa, pb = list(a.parameters()), list(b.parameters())
        d = sum(p.numel() for p in pa)
        spy = Spy(make_collective(name))
        memory = make_memory(memory_name, d, **({"momentum": 0.9} if memory_name == "dgc" else {}))
        twin = make_memory(memory_name, d, **({"momentum": 0.9} if memory_name == "dgc" else {}))
        opt_a = torch.optim.SGD(pa, lr=w.TINY_LR) if memory_name == "dgc" else w.tiny_optimizer(a)
        opt_b = torch.optim.SGD(pb, lr=w.TINY_LR) if memory_name == "dgc" else w.tiny_optimizer(b)
        sgd = SyncSGD(pa, opt_a, spy, memory, ctx.world_size, clip)
        plain = make_collective(name)
        staged = []
        for step in range(w.TINY_STEPS):
            w.tiny_backward(a, step, ctx.rank)
            w.tiny_backward(b, step, ctx.rank)
            sgd.step(w.TINY_DENSITY)
            spelled_out_step(pb, opt_b, plain, twin, clip)
            if hasattr(spy, "staging"):
                staged.append(spy.staging(d).data_ptr() == spy.p_ptrs[-1])
        out[f"{name}/{memory_name}/{clip}"] = {
            "params": (flat_params(pa), flat_params(pb)),
            "state": (memory.state_dict(), twin.state_dict()),
            "p_ptrs": spy.p_ptrs,
            "staged": staged,
        }
    for name, memory_name in NAN_SETUPS:
        model = w.tiny_model()
        params = list(model.parameters())
        memory = make_memory(memory_name, sum(p.numel() for p in params))
        sgd = SyncSGD(params, w.tiny_optimizer(model), make_collective(name), memory, WORLD)
        trace = []
        for step in range(w.TINY_STEPS):
            w.tiny_backward(model, step, ctx.rank)
            if step == w.NAN_STEP and ctx.rank == w.NAN_RANK:
                params[0].grad[0, 0] = float("nan")
            before = flat_params(params)
            stats = sgd.step(w.TINY_DENSITY)
            trace.append((stats.skipped, bool(torch.equal(before, flat_params(params)))))
        out[f"nan/{name}/{memory_name}"] = trace
    return out


@pytest.fixture(scope="module")
def results() -> list[dict]:
    options = LaunchOptions(timeout_s=COLLECTIVE_TIMEOUT_S, threads=1)
    return launch(run_twins, WORLD, (), options, deadline_s=COLLECTIVE_TIMEOUT_S)


pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(300), pytest.mark.slow]
KEYS = [f"{name}/{memory}/{clip}" for name, memory, clip in SETUPS]


@pytest.mark.parametrize("key", KEYS)
def test_the_step_gives_the_bits_of_the_step_spelled_out(results, key):
    for rank, out in enumerate(results):
        got, want = out[key]["params"]
        assert torch.equal(got, want), (rank, key)
        assert not torch.equal(got, flat_params(list(w.tiny_model().parameters())))  # it trained
        state, twin = out[key]["state"]
        assert state.keys() == twin.keys()
        for field in state:
            assert torch.equal(state[field], twin[field]), (rank, key, field)


@pytest.mark.parametrize("key", KEYS)
def test_the_flat_gradient_lives_in_one_buffer_across_steps(results, key):
    # with memory none p is g itself: the step's buffer, or dense's staging view
    for out in results:
        ptrs = out[key]["p_ptrs"]
        assert len(ptrs) == w.TINY_STEPS
        if "/none/" in key:
            assert ptrs == [ptrs[0]] * len(ptrs), key
        if key.startswith("dense/none/"):
            assert out[key]["staged"] == [True] * w.TINY_STEPS  # reduced where (1) wrote it
        if key.startswith("dense/residual/"):
            assert out[key]["staged"] == [False] * w.TINY_STEPS  # the memory's p: copied


@pytest.mark.parametrize("setup", NAN_SETUPS, ids=["/".join(s) for s in NAN_SETUPS])
def test_nan_on_one_rank_skips_the_step_on_every_rank(results, setup):
    for rank, out in enumerate(results):
        trace = out["nan/" + "/".join(setup)]
        for step, (skipped, unchanged) in enumerate(trace):
            assert skipped == (step == w.NAN_STEP), (rank, step)
            assert unchanged == skipped, (rank, step)  # a skipped step moves nothing
