"""Parameter-server messages over torch.distributed point-to-point send / recv.

Rank 0 is the server, rank w + 1 is worker w. Every message is a *frame*: a fixed header,
then a payload whose size the header gives.

    header  int64[8] = [kind, version, nnz, numel, encoding, value_dtype, meta0, meta1]
                       (meta0, meta1: two float64 carried bit for bit, e.g. ||e|| and loss)
    payload SPARSE: indices (nnz,) index_dtype(numel), then values (nnz,)    nnz * 8 bytes
            DENSE:  values (numel,)                                          numel * 4 bytes
            BYTES:  one state as JSON and tensor bytes (comm.state_codec)   nnz bytes
            NONE:   nothing

    worker -> server   PULL (ask for the model)   PUSH (c, t_w)   FLUSH (residual, t_w; last)
                       STATE (the worker's state, asked for by SAVE)
    server -> worker   MODEL (x_t, or what changed since the last pull; version t)
                       STOP (no more work: flush and leave)   DONE (flush applied, goodbye)
                       SAVE (send your state, for a checkpoint)
                       STATE (a resumed run: the state this worker had at the checkpoint)

A STATE payload may hold at most ``STATE_BYTES_PER_ENTRY * numel + STATE_BYTES_EXTRA`` bytes
(a receiver never allocates what a header merely claims), and it is decoded without pickle:
a payload that does not decode is a malformed frame.

A sparse message goes DENSE when that is cheaper (nnz * 8 >= numel * 4 for float32), so a
dense compressor costs 4 bytes per entry, not 8. Bytes counted are payload bytes, exactly as
sent (:func:`wire_bytes`); the 64-byte header of every frame is counted apart, as a message.

Why point-to-point and not ``torch.distributed.rpc``: a killed worker must not stop the run.
With one receiving thread per worker, a dead peer fails only the ``recv`` on its own pair
("connection closed by peer") and the server carries on with the others; RPC's agent
shutdown is collective and waits for every peer, dead ones included. Send / recv also keep
every byte visible and counted here. The server runs on gloo: it must take whichever worker
speaks first, with a receive pending on every worker at once, which NCCL's point-to-point
calls (GPU stream operations, no receive from any source) are not built for.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from sparsgd.comm.state_codec import decode, encode
from sparsgd.compress.message import SparseMessage, dense_bytes, index_dtype, message_bytes

__all__ = [
    "HEADER_BYTES",
    "KINDS",
    "STATE_BYTES_EXTRA",
    "STATE_BYTES_PER_ENTRY",
    "Frame",
    "Inbound",
    "MalformedFrame",
    "PSEndpoint",
    "ServerInbox",
    "max_state_bytes",
    "wire_bytes",
]

HEADER_LEN = 8
HEADER_BYTES = HEADER_LEN * 8
KINDS = {"PULL": 1, "PUSH": 2, "FLUSH": 3, "MODEL": 4, "STOP": 5, "DONE": 6, "SAVE": 7, "STATE": 8}
_KIND_NAMES = {v: k for k, v in KINDS.items()}
NONE, SPARSE, DENSE, BYTES = 0, 1, 2, 3
VALUE_CODES = {torch.float32: 0, torch.float16: 1}
_VALUE_DTYPES = {v: k for k, v in VALUE_CODES.items()}
TAG_HEADER, TAG_INDICES, TAG_VALUES, TAG_STATE = 1, 2, 3, 4
# a worker's state: its memory (up to 2 float32 vectors of numel, e.g. DGC's u and v: 8 bytes
# per entry) and its batch permutation and generators; twice that, and a MiB for the rest
STATE_BYTES_PER_ENTRY = 16
STATE_BYTES_EXTRA = 2**20


class MalformedFrame(ValueError):
    """A header that does not describe a valid frame (the payload cannot be trusted)."""


def max_state_bytes(numel: int) -> int:
    """The largest STATE payload a receiver accepts for a model of ``numel`` entries."""
    return STATE_BYTES_PER_ENTRY * numel + STATE_BYTES_EXTRA


def wire_bytes(nnz: int, numel: int, value_dtype: torch.dtype = torch.float32) -> int:
    """Payload bytes of a message of ``nnz`` entries: sparse or dense, whichever is smaller."""
    return min(message_bytes(nnz, numel, value_dtype), dense_bytes(numel, value_dtype))


@dataclass(frozen=True)
class Frame:
    """One received frame; ``msg`` holds its payload (all ``numel`` entries if DENSE), or
    ``state`` the decoded state of a STATE frame."""

    kind: str
    version: int
    msg: SparseMessage | None
    meta: tuple[float, float]
    nbytes: int  # payload bytes
    state: Any = None


def _header(
    kind: str,
    version: int,
    msg: SparseMessage | None,
    meta: tuple[float, float],
    blob: Tensor | None = None,
) -> Tensor:
    head = torch.zeros(HEADER_LEN, dtype=torch.int64)
    head[0], head[1] = KINDS[kind], version
    if blob is not None:
        head[2], head[4] = blob.numel(), BYTES
    elif msg is not None:
        dense = message_bytes(msg.nnz, msg.numel, msg.values.dtype) >= dense_bytes(
            msg.numel, msg.values.dtype
        )
        head[2], head[3] = msg.nnz, msg.numel
        head[4], head[5] = (DENSE if dense else SPARSE), VALUE_CODES[msg.values.dtype]
    head[6:8] = torch.tensor(meta, dtype=torch.float64).view(torch.int64)
    return head


def _parse_header(head: Tensor, numel: int) -> tuple[str, int, int, int, torch.dtype]:
    """``(kind, version, nnz, encoding, value dtype)``; raises MalformedFrame."""
    kind_code, version, nnz, n, encoding, value_code = (int(v) for v in head[:6])
    if kind_code not in _KIND_NAMES:
        raise MalformedFrame(f"unknown frame kind {kind_code}")
    if encoding == NONE:
        if nnz != 0:
            raise MalformedFrame(f"a frame without payload must have nnz 0; got {nnz}")
        return _KIND_NAMES[kind_code], version, 0, NONE, torch.float32
    if encoding == BYTES:
        if _KIND_NAMES[kind_code] != "STATE" or not 0 < nnz <= max_state_bytes(numel):
            raise MalformedFrame(
                f"a {_KIND_NAMES[kind_code]} frame of {nnz} state bytes (only STATE frames "
                f"carry them, at most {max_state_bytes(numel)} for numel {numel})"
            )
        return "STATE", version, nnz, BYTES, torch.uint8
    if n != numel or encoding not in (SPARSE, DENSE) or value_code not in _VALUE_DTYPES:
        raise MalformedFrame(
            f"bad payload description: numel {n} (expected {numel}), encoding {encoding}, "
            f"value code {value_code}"
        )
    if not 0 <= nnz <= numel:
        raise MalformedFrame(f"nnz must be in [0, {numel}]; got {nnz}")
    return _KIND_NAMES[kind_code], version, nnz, encoding, _VALUE_DTYPES[value_code]


class PSEndpoint:
    """This process's side of the server <-> worker link; counts what it sends."""

    def __init__(self, numel: int) -> None:
        self.numel = numel
        self.bytes_sent = 0
        self.messages_sent = 0

    def send(
        self,
        dst: int,
        kind: str,
        version: int = 0,
        msg: SparseMessage | None = None,
        meta: tuple[float, float] = (0.0, 0.0),
        state: Any = None,
    ) -> int:
        """Send one frame to rank ``dst`` (``state``: a STATE frame's); returns payload bytes."""
        blob = None if state is None else encode(state)
        head = _header(kind, version, msg, meta, blob)
        dist.send(head, dst, tag=TAG_HEADER)
        nbytes = 0
        if blob is not None:
            dist.send(blob, dst, tag=TAG_STATE)
            nbytes = blob.numel()
        elif msg is not None and int(head[4]) == DENSE:
            values = msg.to_dense(msg.values.dtype)
            dist.send(values, dst, tag=TAG_VALUES)
            nbytes = dense_bytes(msg.numel, msg.values.dtype)
        elif msg is not None and msg.nnz > 0:
            dist.send(msg.indices.to(index_dtype(msg.numel)).contiguous(), dst, tag=TAG_INDICES)
            dist.send(msg.values.contiguous(), dst, tag=TAG_VALUES)
            nbytes = msg.nbytes
        self.bytes_sent += nbytes
        self.messages_sent += 1
        return nbytes

    def recv(self, src: int) -> Frame:
        """Receive one frame from rank ``src``; raises MalformedFrame on a bad header."""
        head = torch.empty(HEADER_LEN, dtype=torch.int64)
        dist.recv(head, src, tag=TAG_HEADER)
        kind, version, nnz, encoding, value_dtype = _parse_header(head, self.numel)
        meta_values = head[6:8].clone().view(torch.float64)
        meta = (float(meta_values[0]), float(meta_values[1]))
        if encoding == NONE:
            return Frame(kind, version, None, meta, 0)
        if encoding == BYTES:
            blob = torch.empty(nnz, dtype=torch.uint8)
            dist.recv(blob, src, tag=TAG_STATE)
            return Frame(kind, version, None, meta, nnz, _decoded(blob))
        if encoding == DENSE:
            values = torch.empty(self.numel, dtype=value_dtype)
            dist.recv(values, src, tag=TAG_VALUES)
            indices = torch.arange(self.numel, dtype=index_dtype(self.numel))
            msg = SparseMessage(indices, values, self.numel)
            return Frame(kind, version, msg, meta, dense_bytes(self.numel, value_dtype))
        indices = torch.empty(nnz, dtype=index_dtype(self.numel))
        values = torch.empty(nnz, dtype=value_dtype)
        if nnz > 0:
            dist.recv(indices, src, tag=TAG_INDICES)
            dist.recv(values, src, tag=TAG_VALUES)
        msg = SparseMessage(indices, values, self.numel)
        return Frame(kind, version, msg, meta, msg.nbytes)


def _decoded(blob: Tensor) -> Any:
    """A STATE payload's state; anything that does not decode is a MalformedFrame."""
    try:
        return decode(blob)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as err:
        raise MalformedFrame(f"a STATE payload that does not decode: {err}") from None


@dataclass(frozen=True)
class Inbound:
    """What the server's inbox hands over: a frame from a worker, or why none will come."""

    worker: int
    frame: Frame | None
    problem: str | None = None  # "lost: ..." (peer gone) or "malformed: ..." (bad header)


class ServerInbox:
    """One receiving thread per worker; frames from all of them, in arrival order.

    A worker's thread ends after its FLUSH, after a malformed header (the stream cannot be
    trusted past it) and when its peer is lost, each time leaving a last :class:`Inbound`.
    """

    def __init__(self, endpoint: PSEndpoint, workers: int) -> None:
        self.endpoint = endpoint
        self.workers = workers
        self._queue: queue.Queue[Inbound] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._listen, args=(w,), name=f"ps-recv-{w}", daemon=True)
            for w in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _listen(self, worker: int) -> None:
        while True:
            try:
                frame = self.endpoint.recv(worker + 1)
            except MalformedFrame as err:
                self._queue.put(Inbound(worker, None, f"malformed: {err}"))
                return
            except RuntimeError as err:  # gloo: connection closed by peer, or a timeout
                self._queue.put(Inbound(worker, None, f"lost: {str(err).splitlines()[0]}"))
                return
            self._queue.put(Inbound(worker, frame))
            if frame.kind == "FLUSH":
                return

    def next(self, timeout_s: float) -> Inbound:
        """The next frame or problem; raises TimeoutError after ``timeout_s`` of silence."""
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError(f"no message from any worker for {timeout_s} s") from None

    def join(self, timeout_s: float) -> list[int]:
        """Wait for the receiving threads; returns the workers whose thread is still running."""
        for thread in self._threads:
            thread.join(timeout_s)
        return [w for w, t in enumerate(self._threads) if t.is_alive()]
