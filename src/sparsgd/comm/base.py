"""The collective contract, and the input-agreement check that rides in its messages.

    reduced = collective.reduce(p, density)     # p: (d,) = e_i + g_i on this rank
    x      -= lr * reduced.total / P             # the same update on every rank
    e_i     = reduced.residual                   # what this rank keeps for later

``reduce`` is called by every rank of the group with the same ``d``, dtype and ``density``.
It never changes ``p``, unless the caller hands ``p`` over with ``overwrite=True`` (its ``p``
is scratch it will not read again, such as a memory's buffer): then a sparse collective turns
``p`` into the residual in place and returns ``p``'s memory as ``residual``, with no copy of
d entries; the values are the same bits either way (dense, whose residual is 0, ignores it).
The result (:class:`~sparsgd.comm.stats.Reduced`) keeps the invariant
``sum_i residual_i + total == sum_i p_i`` of docs/algorithms.md (error feedback).

Input agreement: all ranks agree on the input, or all raise. A rank that raised alone would
leave the others blocked in the next message, so no rank raises before all have compared
notes. The notes ride in the messages that already flow; a separate collective runs only
when they say something is wrong, or before the first call:

    # (1) no signature agreed yet: handshake = all_gather of one header per rank
    #     [status, numel, k, dtype code, finite] (5 int64); every rank raises the same kind
    #     of error if any rank is invalid, non-finite or differs, else all adopt (numel, k, dtype)
    # (2) every call: status = 0 if this rank's input is valid, finite and has the agreed
    #     signature, else 1; it travels in the payload (tree header, length header, one
    #     element appended to the dense buffer), and a flagged rank sends placeholders of the
    #     agreed size, so no message ever has a size its receiver did not expect
    # (3) every rank learns the sum of the statuses from the exchange; if it is > 0 (dense:
    #     NaN, see (2b)), every rank runs the handshake (1): it raises with the full report
    #     (the same errors on every rank) or, when all ranks changed signature together (a
    #     density schedule), adopts the new one, and the call is made again

A rank whose own input was invalid re-raises its own error (it names the parameter, the value
and the reason); the others raise a ValueError naming that rank. NaN/Inf anywhere raises
:class:`~sparsgd.compress.checks.NonFiniteError` on every rank. The finiteness part of the
status of (2) costs no pass of its own where the collective reads ``p`` anyway:

    # (2a) exact top-k selection (gtopk, gtopk_exact, topk_allgather without a compressor):
    #      topk_indices raises NonFiniteError for NaN/Inf at no extra cost; caught, status 1
    # (2b) dense: one aminmax pass of p before the exchange gives finiteness and max |p|;
    #      the appended element carries max |p| (NaN to flag), so the sum of the statuses is
    #      NaN when some rank flagged, and otherwise bounds every entry of the sum: only a
    #      bound near the dtype's largest value makes every rank test the sum for an overflow
    # (2c) topk_allgather with a compressor (which may not read every entry): ``aminmax`` of
    #      ``p`` before the call (NaN and Inf propagate to the min or the max)

None of these allocates anything of full size; the exact count of NaN and Inf happens only
in the handshake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from sparsgd.comm.stats import Ledger, Reduced
from sparsgd.comm.wire import Link
from sparsgd.compress.base import Compressor
from sparsgd.compress.checks import NonFiniteError, check_finite, check_flat, k_from_density
from sparsgd.compress.message import SparseMessage
from sparsgd.compress.scratch import Scratch
from sparsgd.compress.topk import topk_indices

__all__ = [
    "DTYPE_CODES",
    "Collective",
    "InputCheck",
    "Signature",
    "Workspace",
    "check_compressor",
    "select_topk",
]

DTYPE_CODES = {torch.float32: 1, torch.float16: 2, torch.bfloat16: 3, torch.float64: 4}
HANDSHAKE_LEN = 5  # int64 fields of the handshake header: status, numel, k, dtype, finite
Attempt = Callable[[Tensor, float, int, Ledger], "Reduced | None"]


@runtime_checkable
class Collective(Protocol):
    """An aggregation rule of docs/algorithms.md on one process group."""

    name: str

    def reduce(self, p: Tensor, density: float, *, overwrite: bool = False) -> Reduced:
        """Aggregate ``p`` (this rank's ``e + g``) over the group; ``p`` is not changed unless
        ``overwrite`` hands it over (module docstring)."""
        ...


class Signature(NamedTuple):
    """What every rank must agree on: sizes and dtype of the call."""

    numel: int
    k: int
    dtype: torch.dtype


class InputCheck:
    """The check of one collective: the agreed :class:`Signature`, then the run of a call."""

    def __init__(self, who: str, link: Link, scan_finite: bool = False) -> None:
        """``scan_finite``: test finiteness by the ``aminmax`` pass of (2c); False where the
        collective learns it by (2a) or (2b) itself."""
        self.who, self.link, self.scan_finite = who, link, scan_finite
        self.agreed: Signature | None = None  # set by the handshake, the same on every rank

    def run(self, p: Tensor, density: float, attempt: Attempt) -> Reduced:
        """``attempt(p, density, status, ledger)`` under the check; it returns None if a rank
        flagged its input, and is then made once more after the handshake."""
        ledger = Ledger(self.link.device)
        if self.agreed is None:
            self.handshake(p, density, ledger)  # (1)
        result = attempt(p, density, self._status(p, density, ledger), ledger)  # (2)
        if result is not None:
            return result
        self.handshake(p, density, ledger)  # (3) raises, or adopts a new signature
        result = attempt(p, density, self._status(p, density, ledger), ledger)
        if result is None:
            raise RuntimeError(f"{self.who}: a rank flagged its input after the handshake passed")
        return result

    def _status(self, p: Tensor, density: float, ledger: Ledger) -> int:
        """(2) 0 if ``p`` is valid and matches the agreed signature (and, with
        ``scan_finite``, is finite by (2c)), else 1."""
        with ledger.phase("select"):
            try:
                signature = _signature(p, density)
            except (TypeError, ValueError):
                return 1
            if signature != self.agreed:
                return 1
            if not self.scan_finite:
                return 0  # finiteness by (2a) or (2b), in the attempt
            low, high = torch.aminmax(p.detach())
            return 0 if bool(low.isfinite() & high.isfinite()) else 1

    def handshake(self, p: Tensor, density: float, ledger: Ledger) -> None:
        """(1) on every rank together: raises the same kind of error everywhere if a rank's
        input is invalid, not finite or differs from the others', else adopts the signature."""
        with ledger.phase("select"):
            header, error = _local_header(p, density, self.who)
        rows = torch.stack(self.link.all_gather(header.to(self.link.device), ledger, check=True))
        rows = rows.tolist()  # (P, 5), identical on every rank
        if error is not None:
            raise error
        _raise_if_disagree(rows, self.who)
        codes = {code: dtype for dtype, code in DTYPE_CODES.items()}
        self.agreed = Signature(rows[0][1], rows[0][2], codes[rows[0][3]])


class Workspace:
    """The d-sized buffers of a sparse collective, reused across calls of one signature.

    ``total`` is cleared at the positions the previous call wrote, not everywhere;
    ``residual`` is refilled from ``p`` and changed at the selected positions only (unless
    the caller handed ``p`` over: then ``p`` itself is changed there and returned);
    ``scratch`` holds the work buffers of the local top-k selection.
    """

    def __init__(self) -> None:
        self.total = torch.empty(0)  # (d,)
        self.residual = torch.empty(0)  # (d,)
        self.scratch = Scratch()  # buffers of topk_indices, reused across calls
        self._touched: list[Tensor] = []  # indices written into total by the last call

    def open_(self, numel: int, dtype: torch.dtype, device: torch.device) -> None:
        """Make the buffers ready for a call: zero ``total`` where the last call wrote."""
        t = self.total
        if t.numel() != numel or t.dtype != dtype or t.device != device:
            self.total = torch.zeros(numel, dtype=dtype, device=device)
            self.residual = torch.empty(numel, dtype=dtype, device=device)
            self._touched = []
        for indices in self._touched:
            self.total.index_fill_(0, indices, 0)
        self._touched = []

    def add_to_total_(self, msg: SparseMessage) -> Tensor:
        """``total[msg.indices] += msg.values``; returns ``total``."""
        self._touched.append(msg.indices)
        return msg.add_to_(self.total)

    def residual_from_(self, p: Tensor, sent: SparseMessage, overwrite: bool = False) -> Tensor:
        """``residual = p - c`` with ``c`` given by ``sent``: a copy of ``p`` (in ``p`` itself
        if ``overwrite``), then the same subtraction as
        :func:`sparsgd.compress.base.residual_after` at ``sent.indices``."""
        if overwrite:
            return sent.subtract_from_(p.detach())
        self.residual.copy_(p.detach())
        return sent.subtract_from_(self.residual)


def select_topk(p: Tensor, k: int, scratch: Scratch | None = None) -> SparseMessage:
    """The local set ``c``: the ``k`` largest-magnitude entries of ``p``, int64 indices
    ascending, ties to the lower index (:func:`sparsgd.compress.topk.topk_indices`, with the
    work buffers of ``scratch``). Raises NonFiniteError if ``p`` holds NaN or Inf (2a)."""
    indices = topk_indices(p, k, scratch)
    return SparseMessage(indices, p[indices], p.numel())


def check_compressor(who: str, compressor: Compressor | None, allowed: tuple[str, ...]) -> None:
    """Build-time check that ``compressor`` fits a collective whose selection is fixed.

    dense sends everything and the gTop-k tree selects by exact top-k at every merge, sending
    values in the dtype of ``p``. So they accept no compressor, or one whose ``name`` says it
    does what they already do with float32 values; anything else (another rule, float16
    values) is refused at build time rather than silently ignored.
    """
    if compressor is None:
        return
    name = getattr(compressor, "name", None)
    value_dtype = getattr(compressor, "value_dtype", torch.float32)
    if name in allowed and value_dtype == torch.float32:
        return
    raise ValueError(
        f"{who} does its own selection, so compressor must be None or a float32 "
        f"{' / '.join(allowed)} compressor; got {compressor!r} (name={name!r}, "
        f"value_dtype={value_dtype}). Use topk_allgather to aggregate another compressor's output."
    )


def _signature(p: Tensor, density: float) -> Signature:
    check_flat(p, "p")
    if p.dtype not in DTYPE_CODES:
        raise TypeError(f"p must be one of {list(DTYPE_CODES)}; got {p.dtype}")
    return Signature(p.numel(), k_from_density(density, p.numel()), p.dtype)


def _local_header(p: Tensor, density: float, who: str) -> tuple[Tensor, Exception | None]:
    try:
        numel, k, dtype = _signature(p, density)
    except (TypeError, ValueError) as exc:
        invalid = torch.tensor([1, 0, 0, 0, 0], dtype=torch.int64)
        return invalid, type(exc)(f"{who}: {exc}")
    finite, error = 1, None
    try:
        check_finite(p, f"{who}: p")
    except NonFiniteError as exc:
        finite, error = 0, exc
    fields = [0, numel, k, DTYPE_CODES[dtype], finite]  # HANDSHAKE_LEN of them
    return torch.tensor(fields, dtype=torch.int64), error


def _raise_if_disagree(rows: list[list[int]], who: str) -> None:
    invalid = [r for r, row in enumerate(rows) if row[0] != 0]
    if invalid:
        raise ValueError(f"{who}: rank(s) {invalid} passed invalid input (see their error)")
    for column, what in ((1, "numel"), (3, "dtype code"), (2, "k = max(1, floor(density*d))")):
        per_rank = [row[column] for row in rows]
        if len(set(per_rank)) > 1:
            raise ValueError(
                f"{who}: every rank must pass the same {what}; got {per_rank} (rank 0 first)"
            )
    nonfinite = [r for r, row in enumerate(rows) if row[4] == 0]
    if nonfinite:
        raise NonFiniteError(
            f"{who}: p must be finite on every rank; rank(s) {nonfinite} hold NaN or Inf"
        )
