"""One-process reference of every collective of :mod:`sparsgd.comm`: P simulated ranks.

    reduced = simulate("gtopk", [p_0, ..., p_{P-1}], density)   # reduced[i] is rank i's Reduced

The schedule is written out plainly here (rounds of docs/algorithms.md section 3, not the
per-rank view of the process-group code), while the sparse-set math is shared with
:mod:`sparsgd.comm` (:mod:`~sparsgd.comm.merge`, :mod:`~sparsgd.comm.sparse_set`), so the
multi-process run must equal this one element for element. For gtopk:

    # (1) c_i = top_k(p_i);  e_i = p_i - c_i                      for every rank i
    # (2) for r = 0, 1, ..., ceil(log2 P) - 1:
    #         for every receiver j multiple of 2^(r+1) with j + 2^r < P:
    #             held_j, dropped = merge(held_j, held_{j+2^r}, k);  e_j += dropped
    # (3) held_0 is broadcast back down the tree (counted only)
    # (4) total = dense(held_0) on every rank

Each simulated rank's :class:`~sparsgd.comm.stats.CommStats` counts its messages and bytes by
the rules of :mod:`sparsgd.comm.accounting`, the input-agreement header included, so they
equal the real run's; ``comm_s`` is 0 (nothing travels), ``select_s`` and ``apply_s`` are
measured. Every rank gets its own copy of ``total``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sparsgd.comm.accounting import CHECK_HEADER_LEN, Ledger
from sparsgd.comm.base import check_compressor
from sparsgd.comm.merge import merge
from sparsgd.comm.sparse_set import (
    Entries,
    add_dropped_,
    residual_after,
    scatter_dense,
    select_local,
    select_topk,
    sum_in_rank_order,
)
from sparsgd.comm.stats import Reduced
from sparsgd.comm.wire import entry_nbytes
from sparsgd.compress.base import Compressor
from sparsgd.compress.checks import check_finite, check_flat, k_from_density
from sparsgd.compress.message import index_dtype

__all__ = ["SIMULATORS", "simulate"]

Simulator = Callable[[list[Tensor], int, float, "Compressor | None"], list[Reduced]]
INT64_BYTES = 8
TOPK_HEADER_BYTES = 2 * INT64_BYTES  # topk_allgather's (length, value dtype) per rank


def simulate(
    name: str, ps: list[Tensor], density: float, compressor: Compressor | None = None
) -> list[Reduced]:
    """Run collective ``name`` for ``len(ps)`` simulated ranks; ``ps`` is not changed."""
    if name not in SIMULATORS:
        raise ValueError(f"unknown collective {name!r}; valid names: {sorted(SIMULATORS)}")
    if not isinstance(ps, (list, tuple)) or not ps:
        raise ValueError(f"ps must be a non-empty list of flat tensors; got {type(ps).__name__}")
    for rank, p in enumerate(ps):
        check_flat(p, f"ps[{rank}]")
        check_finite(p, f"ps[{rank}]")
    shapes = [tuple(p.shape) for p in ps]
    if len(set(shapes)) > 1 or len({p.dtype for p in ps}) > 1:
        raise ValueError(f"every rank must pass the same numel and dtype; got shapes {shapes}")
    if name != "topk_allgather":
        check_compressor(name, compressor, ("dense",) if name == "dense" else ("topk",))
    k = k_from_density(density, ps[0].numel())
    return SIMULATORS[name]([p.detach() for p in ps], k, density, compressor)


def _ledgers(ps: list[Tensor]) -> list[Ledger]:
    """One ledger per rank, charged with the input-agreement all-gather every call makes."""
    ledgers = [Ledger(p.device) for p in ps]
    for ledger in ledgers:
        ledger.all_gather(CHECK_HEADER_LEN * INT64_BYTES, len(ps), check=True)
    return ledgers


def _dense(
    ps: list[Tensor], k: int, density: float, compressor: Compressor | None
) -> list[Reduced]:
    ledgers, numel = _ledgers(ps), ps[0].numel()
    total = _sum_in_rank_order(ps)  # (d,) sum_i p_i
    out = []
    for p, ledger in zip(ps, ledgers, strict=True):
        ledger.all_reduce(numel, p.element_size(), len(ps))
        sent = torch.arange(numel, dtype=torch.int64, device=p.device)
        out.append(Reduced(total.clone(), torch.zeros_like(p), sent, ledger.stats))
    return out


def _topk_allgather(
    ps: list[Tensor], k: int, density: float, compressor: Compressor | None
) -> list[Reduced]:
    ledgers, numel, world = _ledgers(ps), ps[0].numel(), len(ps)
    sets = []
    for p, ledger in zip(ps, ledgers, strict=True):
        with ledger.phase("select"):
            sets.append(select_local(p, k, density, compressor))
    width = max(s.indices.numel() for s in sets) * entry_nbytes(numel, sets[0].values.dtype)
    total = sum_in_rank_order(sets, numel, ps[0].dtype)
    out = []
    for p, mine, ledger in zip(ps, sets, ledgers, strict=True):
        ledger.all_gather(TOPK_HEADER_BYTES, world)
        ledger.all_gather(width, world)
        with ledger.phase("apply"):
            residual = residual_after(p, mine)
        out.append(Reduced(total.clone(), residual, mine.indices, ledger.stats))
    return out


def _select_all(ps: list[Tensor], k: int, ledgers: list[Ledger]) -> list[Entries]:
    """(1) every rank's local top-k set."""
    sets = []
    for p, ledger in zip(ps, ledgers, strict=True):
        with ledger.phase("select"):
            sets.append(select_topk(p, k))
    return sets


def _tree(
    locals_: list[Entries],
    k: int,
    numel: int,
    ledgers: list[Ledger],
    residuals: list[Tensor] | None,
) -> Entries:
    """(2) the rounds; merged values a receiver drops go to its residual if ``residuals``."""
    held = list(locals_)
    nbytes = k * entry_nbytes(numel, locals_[0].values.dtype)
    step = 1
    while step < len(held):
        for receiver in range(0, len(held) - step, 2 * step):
            sender = receiver + step
            ledgers[sender].send(nbytes)
            ledgers[receiver].recv(nbytes)
            with ledgers[receiver].phase("select"):
                held[receiver], dropped = merge(held[receiver], held[sender], k)
            if residuals is not None:
                with ledgers[receiver].phase("apply"):
                    add_dropped_(residuals[receiver], dropped)
        step *= 2
    return held[0]


def _broadcast(ledgers: list[Ledger], nbytes: int) -> None:
    """(3) every rank j > 0 receives once, from j with its lowest set bit cleared."""
    for rank in range(1, len(ledgers)):
        ledgers[rank & (rank - 1)].send(nbytes)
        ledgers[rank].recv(nbytes)


def _sum_in_rank_order(tensors: list[Tensor]) -> Tensor:
    total = tensors[0].clone()
    for t in tensors[1:]:
        total += t
    return total


def _gtopk(
    ps: list[Tensor], k: int, density: float, compressor: Compressor | None
) -> list[Reduced]:
    ledgers, numel, dtype = _ledgers(ps), ps[0].numel(), ps[0].dtype
    locals_ = _select_all(ps, k, ledgers)
    residuals = []
    for p, mine, ledger in zip(ps, locals_, ledgers, strict=True):
        with ledger.phase("apply"):
            residuals.append(residual_after(p, mine))  # e_i = p_i - c_i, before any merge
    final = _tree(locals_, k, numel, ledgers, residuals)
    _broadcast(ledgers, k * entry_nbytes(numel, dtype))
    total = scatter_dense(final, numel, dtype)  # (4)
    return [
        Reduced(total.clone(), residual, mine.indices, ledger.stats)
        for mine, residual, ledger in zip(locals_, residuals, ledgers, strict=True)
    ]


def _gtopk_exact(
    ps: list[Tensor], k: int, density: float, compressor: Compressor | None
) -> list[Reduced]:
    ledgers, numel, dtype = _ledgers(ps), ps[0].numel(), ps[0].dtype
    chosen = _tree(_select_all(ps, k, ledgers), k, numel, ledgers, None).indices  # G, (k,)
    _broadcast(ledgers, k * torch.empty((), dtype=index_dtype(numel)).element_size())
    values = _sum_in_rank_order([p[chosen] for p in ps])  # (k,) sum_i p_i[G]
    total = scatter_dense(Entries(chosen, values), numel, dtype)
    out = []
    for p, ledger in zip(ps, ledgers, strict=True):
        ledger.all_reduce(k, p.element_size(), len(ps))
        with ledger.phase("apply"):
            residual = residual_after(p, Entries(chosen, p[chosen]))
        out.append(Reduced(total.clone(), residual, chosen.clone(), ledger.stats))
    return out


SIMULATORS: dict[str, Simulator] = {
    "dense": _dense,
    "topk_allgather": _topk_allgather,
    "gtopk": _gtopk,
    "gtopk_exact": _gtopk_exact,
}
