"""Per-parameter error-feedback residuals, stored flat in the layout of DDP's buckets.

DDP hands the hook one flat gradient per bucket, ``g = cat(g_j for j in the bucket)``, with
the parameters ``j`` in the bucket's order (its layout). Parameter ``j``'s residual ``e_j``
(docs/algorithms.md, error feedback) lives as the slice of a flat ``E`` of the layout it was
last used in, so that a bucket costs one operation per step, not one per parameter:

    p = E + g                    # (1) p_j = e_j + g_j for every j, in the layout's buffer P
                                 #     (or in a caller's buffer ``out``)
    E <- residual                # (2) e_j <- residual_j for every j: if the residual is P
                                 #     itself (a collective handed P with overwrite=True
                                 #     turns it into the residual), E and P swap buffers,
                                 #     no copy; else a copy into E

DDP rebuilds its buckets after the first iteration, so a layout can change. The first time
a layout is seen its ``E`` is gathered from each parameter's current residual, wherever it
lives (zeros at the start), and the layouts that held those parameters are dropped:

    E_new = cat(e_j for j in the new layout)   # (3) e_j itself is unchanged by the move

so each ``e_j`` follows its parameter whatever the buckets are, exactly as if it were kept
apart. ``residual(j)`` is ``e_j`` as a ``(numel_j,)`` view, valid until the next ``update_``
of its layout (the swap of (2) hands its memory to P). Non-finite policy (that of
:mod:`sparsgd.compress.memory`): ``compensate`` raises NonFiniteError for a NaN/Inf gradient
before reading or writing any state (unless told ``check=False`` by a caller whose
collective refuses a non-finite ``p`` itself; E is never written by (1) either way), and
``update_`` refuses a non-finite residual.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sparsgd.compress.checks import check_finite, check_numel

__all__ = ["BucketResiduals", "Layout"]

Layout = tuple[int, ...]  # parameter indices (order of model.parameters()) in bucket order


class _Flat:
    """One layout's residual ``E`` and its ``p`` buffer P, both ``(n,)``; offsets per index."""

    def __init__(self, layout: Layout, sizes: list[int], e: Tensor) -> None:
        self.e = e  # (n,) residuals of the layout's parameters, concatenated
        self.p: Tensor | None = None  # (n,) P: p = e + g, made on the first compensate into it
        self.offsets: dict[int, tuple[int, int]] = {}
        start = 0
        for j in layout:
            self.offsets[j] = (start, sizes[j])
            start += sizes[j]

    def view(self, j: int) -> Tensor:
        start, n = self.offsets[j]
        return self.e[start : start + n]


class BucketResiduals:
    """``e_j`` for every parameter ``j`` of ``sizes`` (its numel), laid out per bucket."""

    def __init__(self, sizes: list[int], dtype: torch.dtype = torch.float32) -> None:
        self.sizes, self.dtype = list(sizes), dtype
        self._flats: dict[Layout, _Flat] = {}  # the live layouts
        self._home: dict[int, Layout] = {}  # parameter index -> the live layout holding e_j
        self._loose: dict[int, Tensor] = {}  # residuals loaded while no live layout holds them

    def compensate(
        self, layout: Layout, g: Tensor, out: Tensor | None = None, check: bool = True
    ) -> Tensor:
        """(1) ``p = E + g`` of ``layout``, in its buffer P (valid until its next compensate)
        or in ``out`` (of g's numel); ``check=False`` skips the finiteness test of g."""
        if check:
            check_finite(g, "gradient")  # before any state is read or written
        flat = self._flat(layout, g)
        if out is not None:
            check_numel(out, flat.e.numel(), "out")
            return torch.add(flat.e, g.detach(), out=out)
        kind = torch.result_type(flat.e, g)
        if kind != flat.e.dtype:
            return flat.e + g  # a wider g (e.g. float64): a fresh p of its dtype
        if flat.p is None:
            flat.p = torch.empty_like(flat.e)
        return torch.add(flat.e, g.detach(), out=flat.p)

    def update_(self, layout: Layout, residual: Tensor) -> None:
        """(2) ``E <- residual`` for ``layout`` (changes the residuals of its parameters): a
        swap of E and P when ``residual`` is P itself, else a copy into E."""
        flat = self._flats.get(layout)
        if flat is None:
            raise ValueError(f"layout {layout} has no residuals: compensate it first")
        check_numel(residual, flat.e.numel(), "residual")
        check_finite(residual, "residual")
        if _is_whole(residual, flat.p):
            flat.e, flat.p = flat.p, flat.e  # P's memory holds the residual: it becomes E
        else:
            flat.e.copy_(residual.detach())

    def residual(self, j: int) -> Tensor:
        """``e_j``, ``(numel_j,)``: a view while a layout holds it (zeros before any)."""
        if j in self._home:
            return self._flats[self._home[j]].view(j)
        if j in self._loose:
            return self._loose[j]
        return torch.zeros(self.sizes[j], dtype=self.dtype)

    def load_(self, j: int, e: Tensor) -> None:
        """Set ``e_j`` to ``e`` (a finite ``(numel_j,)`` tensor)."""
        check_numel(e, self.sizes[j], f"residual of parameter {j}")
        check_finite(e, f"residual of parameter {j}")  # a damaged checkpoint must not seed e
        if j in self._home:
            self._flats[self._home[j]].view(j).copy_(e)
        else:
            self._loose[j] = e.detach().to(self.dtype).clone()

    def _flat(self, layout: Layout, like: Tensor) -> _Flat:
        """The flat of ``layout``, gathered (3) on its first use."""
        flat = self._flats.get(layout)
        if flat is not None:
            return flat
        bad = [j for j in layout if not 0 <= j < len(self.sizes)]
        if bad or len(set(layout)) != len(layout):
            raise ValueError(
                f"layout must list distinct parameter indices in [0, {len(self.sizes)}); "
                f"got {layout}"
            )
        check_numel(like, sum(self.sizes[j] for j in layout), "g")
        e = torch.cat([self.residual(j).to(like.device) for j in layout])  # (3)
        flat = _Flat(layout, self.sizes, e.to(self.dtype))
        for old_layout in {self._home[j] for j in layout if j in self._home}:
            old = self._flats.pop(old_layout)
            for j in old.offsets:  # its parameters outside the new layout keep their values
                if j not in flat.offsets:
                    self._loose[j] = old.view(j).clone()
                self._home.pop(j)
        for j in layout:
            self._home[j] = layout
            self._loose.pop(j, None)
        self._flats[layout] = flat
        return flat


def _is_whole(x: Tensor, buffer: Tensor | None) -> bool:
    """Whether ``x`` is all of ``buffer``: same memory, size and dtype (a view of it)."""
    return (
        buffer is not None
        and x.data_ptr() == buffer.data_ptr()
        and x.numel() == buffer.numel()
        and x.dtype == buffer.dtype
        and x.is_contiguous()
    )
