"""The check every collective call starts with: all ranks agree on the input, or all raise.

A rank that raised alone would leave the others blocked in the next message, so no rank
raises before all ranks have compared notes. Each rank checks its own ``p`` and ``density``,
then the group all-gathers one small header per rank
(:data:`~sparsgd.comm.accounting.CHECK_HEADER_LEN` int64 = 40 bytes):

    # (1) header = [status, numel, k, dtype code, finite]   # status 0: this rank's input is valid
    # (2) headers = all_gather(header)                       # (P, 5), identical on every rank
    # (3) every rank raises the same kind of error if any rank is invalid, the numel, k or
    #     dtype differ between ranks, or some rank holds NaN/Inf; else all return k

A rank whose own input was invalid re-raises its own error (it names the parameter, the value
and the reason); the others raise a ValueError naming that rank. NaN/Inf anywhere raises
:class:`~sparsgd.compress.checks.NonFiniteError` on every rank, so a training loop that skips
non-finite steps skips them on all ranks together.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sparsgd.comm.accounting import Ledger
from sparsgd.comm.link import Link
from sparsgd.compress.checks import NonFiniteError, check_finite, check_flat, k_from_density

__all__ = ["DTYPE_CODES", "agree_on_input"]

DTYPE_CODES = {torch.float32: 1, torch.float16: 2, torch.bfloat16: 3, torch.float64: 4}


def agree_on_input(p: Tensor, density: float, link: Link, ledger: Ledger, who: str) -> int:
    """``k`` for this call, the same on every rank; raises on every rank otherwise."""
    with ledger.phase("select"):  # the local check is timed with the selection
        header, error = _local_header(p, density, who)  # (1)
    header = header.to(link.device)
    rows = torch.stack(link.all_gather(header, ledger, check=True)).tolist()  # (2) (P, 5)
    if error is not None:  # (3)
        raise error
    _raise_if_disagree(rows, who)
    return int(rows[0][2])


def _local_header(p: Tensor, density: float, who: str) -> tuple[Tensor, Exception | None]:
    try:
        check_flat(p, "p")
        if p.dtype not in DTYPE_CODES:
            raise TypeError(f"p must be one of {list(DTYPE_CODES)}; got {p.dtype}")
        k = k_from_density(density, p.numel())
    except (TypeError, ValueError) as exc:
        invalid = torch.tensor([1, 0, 0, 0, 0], dtype=torch.int64)
        return invalid, type(exc)(f"{who}: {exc}")
    finite, error = 1, None
    try:
        check_finite(p, f"{who}: p")
    except NonFiniteError as exc:
        finite, error = 0, exc
    fields = [0, p.numel(), k, DTYPE_CODES[p.dtype], finite]  # CHECK_HEADER_LEN of them
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
