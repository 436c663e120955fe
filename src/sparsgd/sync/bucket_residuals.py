"""Per-parameter error-feedback residuals, stored flat in the layout of DDP's buckets.

DDP hands the hook one flat gradient per bucket, ``g = cat(g_j for j in the bucket)``, with
the parameters ``j`` in the bucket's order (its layout). Parameter ``j``'s residual ``e_j``
(docs/algorithms.md, error feedback) lives as the slice of a flat ``E`` of the layout it was
last used in, so that a bucket costs one operation per step, not one per parameter:

    p = E + g                    # (1) p_j = e_j + g_j for every j, in a buffer of the layout
    E <- residual                # (2) e_j <- residual_j for every j (a copy into E)

DDP rebuilds its buckets after the first iteration, so a layout can change. The first time
a layout is seen its ``E`` is gathered from each parameter's current residual, wherever it
lives (zeros at the start), and the layouts that held those parameters are dropped:

    E_new = cat(e_j for j in the new layout)   # (3) e_j itself is unchanged by the move

so each ``e_j`` follows its parameter whatever the buckets are, exactly as if it were kept
apart. ``residual(j)`` is ``e_j`` as a ``(numel_j,)`` view. Non-finite policy (that of
:mod:`sparsgd.compress.memory`): ``compensate`` raises NonFiniteError for a NaN/Inf gradient
before reading or writing any state, and ``update_`` refuses a non-finite residual.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sparsgd.compress.checks import check_finite, check_numel

__all__ = ["BucketResiduals", "Layout"]

Layout = tuple[int, ...]  # parameter indices (order of model.parameters()) in bucket order


class _Flat:
    """One layout's residual ``E`` and its ``p`` buffer, both ``(n,)``; offsets per index."""

    def __init__(self, layout: Layout, sizes: list[int], e: Tensor) -> None:
        self.e = e  # (n,) residuals of the layout's parameters, concatenated
        self.p = torch.empty_like(e)  # (n,) p = e + g, handed out by compensate
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

    def compensate(self, layout: Layout, g: Tensor) -> Tensor:
        """(1) ``p = E + g`` of ``layout``, in a buffer valid until its next compensate."""
        check_finite(g, "gradient")  # before any state is read or written
        flat = self._flat(layout, g)
        if torch.result_type(flat.e, g) != flat.p.dtype:
            return flat.e + g  # a wider g (e.g. float64): a fresh p of its dtype
        return torch.add(flat.e, g.detach(), out=flat.p)

    def update_(self, layout: Layout, residual: Tensor) -> None:
        """(2) ``E <- residual`` for ``layout`` (changes the residuals of its parameters)."""
        flat = self._flats.get(layout)
        if flat is None:
            raise ValueError(f"layout {layout} has no residuals: compensate it first")
        check_numel(residual, flat.e.numel(), "residual")
        check_finite(residual, "residual")
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
