"""The collective contract: every rank offers ``p_i``, every rank gets the same aggregate.

    reduced = collective.reduce(p, density)     # p: (d,) = e_i + g_i on this rank
    x      -= lr * reduced.total / P             # the same update on every rank
    e_i     = reduced.residual                   # what this rank keeps for later

``reduce`` is called by every rank of the group with the same ``d``, dtype and ``density``
(checked: all ranks raise together otherwise, see :mod:`sparsgd.comm.agree`). It never
changes ``p``. The result, :class:`~sparsgd.comm.stats.Reduced`, keeps the invariant
``sum_i residual_i + total == sum_i p_i`` of docs/algorithms.md section 2.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from sparsgd.comm.stats import Reduced
from sparsgd.compress.base import Compressor

__all__ = ["Collective", "check_compressor"]


@runtime_checkable
class Collective(Protocol):
    """An aggregation rule of docs/algorithms.md section 3 on one process group."""

    name: str

    def reduce(self, p: Tensor, density: float) -> Reduced:
        """Aggregate ``p`` (this rank's ``e + g``) over the group; ``p`` is not changed."""
        ...


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
