"""Processes for the scripted-worker test: the real server (rank 0) and two hand-driven
workers (ranks 1, 2) that push known messages, a replay, bad versions and broken frames.

The steps are ordered through the store, and each worker confirms that the server has seen
its pushes by pulling (the server handles a worker's frames in the order they were sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from sparsgd.asynchronous.config import AsyncConfig
from sparsgd.asynchronous.server import serve
from sparsgd.comm.ps_transport import HEADER_LEN, KINDS, TAG_HEADER, PSEndpoint
from sparsgd.compress.message import SparseMessage
from sparsgd.worker.problem import Problem

NNZ = 5


@dataclass(frozen=True)
class Script:
    cfg: AsyncConfig
    problem: Problem
    out: str
    store_port: int
    numel: int


def message(seed: int, numel: int) -> SparseMessage:
    """A known sparse gradient: NNZ ascending indices, normal values (same in every process)."""
    gen = torch.Generator().manual_seed(seed)
    indices = torch.sort(torch.randperm(numel, generator=gen)[:NNZ]).values.to(torch.int32)
    return SparseMessage(indices, torch.randn(NNZ, generator=gen), numel)


def _pull(ep: PSEndpoint) -> tuple[str, int]:
    ep.send(0, "PULL")
    frame = ep.recv(0)
    return frame.kind, frame.version


def _worker0(ep: PSEndpoint, store: dist.TCPStore, numel: int) -> None:
    assert _pull(ep) == ("MODEL", 0)
    store.set("w0_pulled", "1")
    store.wait(["w1_pulled"])
    ep.send(0, "PUSH", 0, message(1, numel), (0.5, 1.0))  # tau 0
    assert _pull(ep) == ("MODEL", 1)
    store.set("a_applied", "1")
    store.wait(["w1_done"])
    ep.send(0, "PUSH", 1, message(3, numel), (0.5, 1.0))  # tau 1: w1's push came between
    assert _pull(ep)[0] == "STOP"
    empty = SparseMessage(torch.empty(0, dtype=torch.int32), torch.empty(0), numel)
    ep.send(0, "FLUSH", 1, empty, (2.0, 0.0))
    assert ep.recv(0).kind == "DONE"


def _worker1(ep: PSEndpoint, store: dist.TCPStore, numel: int) -> None:
    store.wait(["w0_pulled"])
    assert _pull(ep) == ("MODEL", 0)
    store.set("w1_pulled", "1")
    store.wait(["a_applied"])
    ep.send(0, "PUSH", 0, message(2, numel), (0.5, 1.0))  # tau 1
    ep.send(0, "PUSH", 5, message(2, numel), (0.5, 1.0))  # from the future
    assert _pull(ep) == ("MODEL", 2)
    nan = message(4, numel)
    ep.send(0, "PUSH", 2, SparseMessage(nan.indices, torch.full((NNZ,), float("nan")), numel))
    shuffled = message(5, numel)
    ep.send(0, "PUSH", 2, SparseMessage(shuffled.indices.flip(0), shuffled.values, numel))
    ep.send(0, "PUSH", 1, message(6, numel))  # not the version it pulled
    head = torch.zeros(HEADER_LEN, dtype=torch.int64)
    head[0], head[2], head[3], head[4] = KINDS["PUSH"], numel + 5, numel, 1  # nnz > numel
    dist.send(head, 0, tag=TAG_HEADER)
    assert ep.recv(0).kind == "STOP"  # the server stops a worker whose stream broke
    store.set("w1_done", "1")


def run(rank: int, script: Script) -> None:
    timeout = timedelta(seconds=script.cfg.timeout_s)
    store = dist.TCPStore("127.0.0.1", script.store_port, 3, False, timeout=timeout)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=3, timeout=timeout)
    try:
        if rank == 0:
            serve(script.cfg, script.problem, script.out, False, store)
        else:
            ep = PSEndpoint(script.numel)
            (_worker0 if rank == 1 else _worker1)(ep, store, script.numel)
    finally:
        dist.destroy_process_group()
