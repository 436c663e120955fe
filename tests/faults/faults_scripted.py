"""Processes for the fault tests of the real server: rank 0 serves, rank 1 is a hand-driven
worker that sends what a broken or diverged worker would send.

Scripts (``Script.kind``):
    fields   one push per bad field (NaN residual norm, NaN loss, negative norm, an entry of
             1e30), then one good push, then a flush whose counts are NaN and negative
    stall    only pushes of 1e30: the server halts the run after ``cfg.stall_pushes``
    silent   pulls again and again and never pushes (what a worker that skips every non-finite
             gradient does): the server halts once the version has not moved for --timeout
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.server import serve
from sparsgd.comm.ps_transport import PSEndpoint
from sparsgd.compress.message import SparseMessage
from sparsgd.worker.problem import Problem

HUGE = 1e30  # the absurd push of issue 13
SILENT_LIMIT_S = 60.0  # the silent worker gives up (and fails the test) after this long
PULL_PAUSE_S = 0.05


@dataclass(frozen=True)
class Script:
    kind: str
    cfg: AsyncConfig
    problem: Problem
    out: str
    store_port: int
    numel: int


def good(numel: int) -> SparseMessage:
    """The one acceptable push: 0.5 at indices 0 and 2."""
    return SparseMessage(torch.tensor([0, 2], dtype=torch.int32), torch.tensor([0.5, 0.5]), numel)


def huge(numel: int) -> SparseMessage:
    return SparseMessage(torch.tensor([1], dtype=torch.int32), torch.tensor([HUGE]), numel)


def _pull(ep: PSEndpoint) -> tuple[str, int]:
    ep.send(0, "PULL")
    frame = ep.recv(0)
    return frame.kind, frame.version


def _finish(ep: PSEndpoint, version: int, numel: int, meta: tuple[float, float]) -> None:
    empty = SparseMessage(torch.empty(0, dtype=torch.int32), torch.empty(0), numel)
    ep.send(0, "FLUSH", version, empty, meta)
    assert ep.recv(0).kind == "DONE"


def _fields(ep: PSEndpoint, script: Script) -> None:
    numel = script.numel
    assert _pull(ep) == ("MODEL", 0)
    nan = float("nan")
    ep.send(0, "PUSH", 0, good(numel), (nan, 0.5))  # meta = (residual norm, loss)
    ep.send(0, "PUSH", 0, good(numel), (1.0, nan))
    ep.send(0, "PUSH", 0, good(numel), (-1.0, 0.5))
    ep.send(0, "PUSH", 0, huge(numel), (1.0, 0.5))
    ep.send(0, "PUSH", 0, good(numel), (2.5, 0.5))  # applied: version 1 = steps
    assert _pull(ep) == ("STOP", 1)
    _finish(ep, 1, numel, (nan, -3.0))  # counts that are no counts


def _stall(ep: PSEndpoint, script: Script) -> None:
    numel, pushes = script.numel, script.cfg.stall_pushes
    assert _pull(ep) == ("MODEL", 0)
    for _ in range(pushes):
        ep.send(0, "PUSH", 0, huge(numel), (1.0, 0.5))
    assert _pull(ep) == ("STOP", 0)
    _finish(ep, 0, numel, (float(pushes), 0.0))


def _silent(ep: PSEndpoint, script: Script) -> None:
    numel = script.numel
    deadline = time.monotonic() + SILENT_LIMIT_S
    while time.monotonic() < deadline:
        kind, version = _pull(ep)
        if kind == "STOP":
            _finish(ep, version, numel, (0.0, 7.0))
            return
        time.sleep(PULL_PAUSE_S)
    raise AssertionError(f"the server never stopped a worker that pushes nothing in {deadline}")


WORKERS = {"fields": _fields, "stall": _stall, "silent": _silent}


def run(rank: int, script: Script) -> None:
    timeout = timedelta(seconds=60)
    store = dist.TCPStore("127.0.0.1", script.store_port, 2, False, timeout=timeout)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=2, timeout=timeout)
    try:
        if rank == 0:
            serve(script.cfg, script.problem, script.out, False, store)
            return
        WORKERS[script.kind](PSEndpoint(script.numel), script)
    finally:
        dist.destroy_process_group()
