"""A real worker's state: it crosses the wire codec and comes back into a new worker process
(whose own streams are keyed by the restart) that then pushes exactly what the old one would
have; a state that is malformed or not finite is refused naming what is wrong; a STATE
frame's header is bounded and its payload never unpickled."""

from __future__ import annotations

import re

import pytest
import torch

from sparsgd.asynchronous.build import build_gradient_worker
from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.speed import Pace
from sparsgd.asynchronous.worker_state import (
    WorkerStateError,
    check_worker_state,
    restore_worker,
    worker_state,
)
from sparsgd.comm.ps_transport import (
    BYTES,
    HEADER_LEN,
    KINDS,
    MalformedFrame,
    _decoded,
    _parse_header,
    max_state_bytes,
)
from sparsgd.comm.state_codec import decode, encode
from sparsgd.worker.problem import Problem
from sparsgd.worker.seeds import generator_for

PROBLEM = Problem("logreg", "synthetic", seed=0, dataset_options=(("num_train", 128),))


def _worker(cfg: AsyncConfig, restart: int = 0):
    bundle = PROBLEM.load()
    model = PROBLEM.build_model(bundle)
    inputs, targets = PROBLEM.worker_data(bundle, 1, cfg.workers)
    gw = build_gradient_worker(cfg, 1, model, inputs, targets, restart)
    pace = Pace(1.0, None, generator_for(cfg.seed, "worker", 1, "delay"))
    return gw, pace, model.flat()


@pytest.mark.parametrize(
    ("compressor", "memory", "settings"),
    [("topk", "residual", ()), ("randomk", "residual", ()), ("topk", "dgc", (("momentum", 0.9),))],
)
def test_a_restored_worker_pushes_what_the_old_one_would_have(compressor, memory, settings):
    cfg = AsyncConfig(
        mode="async", workers=2, batch_size=8, density=0.1, compressor=compressor,
        memory=memory, memory_settings=settings, delay="exponential:0.01",
    )  # fmt: skip
    old, old_pace, x = _worker(cfg)
    for _ in range(5):
        old.step(x)
    old_pace.extra_seconds(0.0)
    state = decode(encode(worker_state(old, old_pace, pushes=5, version=7)))
    check_worker_state(state, 1, x.numel(), version=7)
    new, new_pace, _ = _worker(cfg, restart=7)  # its own streams differ until restored
    assert restore_worker(new, new_pace, state) == (5, 7)
    for _ in range(4):  # batches, dropout, compressor draws and memory all continue
        a, b = old.step(x), new.step(x)
        assert torch.equal(a.msg.indices, b.msg.indices)
        assert torch.equal(a.msg.values, b.msg.values) and a.loss == b.loss
    assert old_pace.extra_seconds(0.0) == new_pace.extra_seconds(0.0)
    assert (old.steps, old.stream.batches) == (new.steps, new.stream.batches) == (9, 9)


def _state():
    cfg = AsyncConfig(mode="async", workers=2, batch_size=8, density=0.1)
    gw, pace, x = _worker(cfg)
    gw.step(x)
    return worker_state(gw, pace, pushes=1, version=0), x.numel()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("delay"), "must be a dict with keys"),
        (lambda s: s.update(worker=0), "names worker 0"),
        (lambda s: s.update(pushes=-1), "pushes must be an integer >= 0; got -1"),
        (lambda s: s.update(version=9), "pulled version 9, beyond the server's 3"),
        (lambda s: s["gradient"].pop("steps"), "gradient must be a dict with keys"),
        (lambda s: s["gradient"]["memory"].update(e=torch.zeros(5)), "has 5 entries; the model"),
        (lambda s: s.update(delay=torch.zeros(3)), "delay must be a generator state"),
        (
            lambda s: s["gradient"]["memory"]["e"].__setitem__(0, float("-inf")),
            "gradient.memory.e holds 1 non-finite values",
        ),
    ],
)
def test_a_bad_state_is_refused_naming_what_is_wrong(change, message):
    state, numel = _state()
    change(state)
    with pytest.raises(WorkerStateError, match="^worker 1's state.*" + re.escape(message)):
        check_worker_state(state, 1, numel, version=3)


def test_a_state_frame_is_bounded_and_only_decoded():
    numel = 100
    head = torch.zeros(HEADER_LEN, dtype=torch.int64)
    head[0], head[2], head[4] = KINDS["STATE"], 4096, BYTES
    assert _parse_header(head, numel)[0] == "STATE"
    head[2] = max_state_bytes(numel) + 1  # a header may not make the receiver allocate more
    with pytest.raises(MalformedFrame, match="state bytes"):
        _parse_header(head, numel)
    head[0], head[2] = KINDS["PUSH"], 16  # only STATE frames carry state bytes
    with pytest.raises(MalformedFrame, match="only STATE frames"):
        _parse_header(head, numel)
    with pytest.raises(MalformedFrame, match="does not decode"):
        _decoded(torch.tensor([3, 0, 0, 0, 0, 0, 0, 0, 123, 34, 120], dtype=torch.uint8))
    good = {"e": torch.arange(3.0)}
    assert torch.equal(_decoded(encode(good))["e"], good["e"])
