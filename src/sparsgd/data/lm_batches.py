"""Batching a token stream for truncated back-propagation through time (Zaremba et al. 2014).

    batchify(ids (N,), B)  -> data (T, B), T = N // B; column b is ids[b*T : (b+1)*T]
    bptt_batch(data, i, L) -> inputs  data[i : i+l]        (l, B)
                              targets data[i+1 : i+1+l]    (l, B), l = min(L, T - 1 - i)

Each column is read top to bottom as one long text, so the hidden state carried from window
``i`` to window ``i + L`` continues the same text. The ``N mod B`` trailing tokens are dropped.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor

__all__ = ["batchify", "bptt_batch", "bptt_starts"]


def batchify(ids: Tensor, batch: int) -> Tensor:
    """``(T, B)`` view of the 1-D stream ``ids`` cut into ``batch`` contiguous columns."""
    if ids.dim() != 1:
        raise ValueError(f"ids must be a 1-D token stream; got shape {tuple(ids.shape)}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer; got {batch!r}")
    steps = ids.numel() // batch
    if steps < 2:
        raise ValueError(
            f"batch={batch} leaves {steps} token(s) per column of a {ids.numel()}-token "
            "stream; need at least 2 (an input and its target)"
        )
    return ids[: steps * batch].view(batch, steps).t().contiguous()  # (T, B)


def bptt_batch(data: Tensor, start: int, bptt: int) -> tuple[Tensor, Tensor]:
    """Inputs and next-token targets of the window of at most ``bptt`` steps at ``start``."""
    if bptt < 1:
        raise ValueError(f"bptt must be >= 1; got {bptt}")
    if not 0 <= start < data.shape[0] - 1:
        raise ValueError(f"start must be in [0, {data.shape[0] - 1}); got {start}")
    length = min(bptt, data.shape[0] - 1 - start)
    return data[start : start + length], data[start + 1 : start + 1 + length]


def bptt_starts(data: Tensor, bptt: int) -> Iterator[int]:
    """The window starts ``0, bptt, 2 bptt, ...`` covering every target of ``data`` once."""
    if bptt < 1:
        raise ValueError(f"bptt must be >= 1; got {bptt}")
    return iter(range(0, data.shape[0] - 1, bptt))
