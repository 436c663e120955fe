"""The sparse message that crosses the wire, and the exact number of bytes it costs.

A message is ``(indices, values)`` over a flat tensor of ``numel`` entries
(docs/algorithms.md, notation):

    indices: int32, or int64 only when numel >= 2**31
    values:  float32, or float16 when asked for
    bytes(message) = n * (itemsize(index) + itemsize(value))

So one entry costs 8 bytes (6 with float16 values); a dense float32 tensor costs 4 * numel.

The same type carries the sparse sets inside the collectives of :mod:`sparsgd.comm` (there
with int64 indices, and values in the dtype of the tensor being reduced, which may also be
bfloat16 or float64). Two in-place operations apply a message to a dense tensor at its
indices only, so a caller that owns a buffer touches ``nnz`` entries, not ``numel``:

    msg.add_to_(x)          # x[indices] += values       (sums of sets, dropped values)
    msg.subtract_from_(x)   # x[indices] -= values       (residual = p - c, in place)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from sparsgd.compress.checks import NonFiniteError

__all__ = [
    "INT32_LIMIT",
    "MESSAGE_VALUE_DTYPES",
    "VALUE_DTYPES",
    "SparseMessage",
    "check_value_dtype",
    "dense_bytes",
    "gather_message",
    "index_dtype",
    "message_bytes",
]

INT32_LIMIT = 2**31
VALUE_DTYPES = (torch.float32, torch.float16)  # what a compressor may send
# what a message may hold: the compressors' dtypes plus those a collective reduces as they are
MESSAGE_VALUE_DTYPES = (*VALUE_DTYPES, torch.bfloat16, torch.float64)


def index_dtype(numel: int) -> torch.dtype:
    """int32 indices unless ``numel >= 2**31``, then int64."""
    return torch.int64 if numel >= INT32_LIMIT else torch.int32


def check_value_dtype(value_dtype: torch.dtype, name: str = "value_dtype") -> torch.dtype:
    """``value_dtype`` must be one of :data:`VALUE_DTYPES` (float32 or float16)."""
    if value_dtype not in VALUE_DTYPES:
        raise ValueError(f"{name} must be one of {VALUE_DTYPES}; got {value_dtype!r}")
    return value_dtype


def message_bytes(n_entries: int, numel: int, value_dtype: torch.dtype = torch.float32) -> int:
    """Exact bytes of a sparse message with ``n_entries`` entries over ``numel`` elements."""
    check_value_dtype(value_dtype)
    if n_entries < 0:
        raise ValueError(f"n_entries must be >= 0; got {n_entries}")
    return n_entries * (index_dtype(numel).itemsize + value_dtype.itemsize)


def dense_bytes(numel: int, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of the same tensor sent dense."""
    return numel * dtype.itemsize


@dataclass(frozen=True)
class SparseMessage:
    """``numel``-long flat tensor given by its nonzero ``(indices, values)``.

    Indices are distinct and in ascending order (every compressor of the project keeps that
    order, so that messages are comparable element for element across ranks).
    """

    indices: Tensor  # (n,) int32 | int64
    values: Tensor  # (n,) float32 | float16 (a compressor's); bfloat16 | float64 (a collective's)
    numel: int

    def __post_init__(self) -> None:
        if self.indices.dim() != 1 or self.values.dim() != 1:
            raise ValueError(
                "indices and values must be 1-D; got shapes "
                f"{tuple(self.indices.shape)} and {tuple(self.values.shape)}"
            )
        if self.indices.numel() != self.values.numel():
            raise ValueError(
                "indices and values must have the same length; got "
                f"{self.indices.numel()} and {self.values.numel()}"
            )
        if self.indices.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"indices must be int32 or int64; got {self.indices.dtype}")
        if self.values.dtype not in MESSAGE_VALUE_DTYPES:
            raise ValueError(
                f"values must be one of {MESSAGE_VALUE_DTYPES}; got {self.values.dtype}"
            )
        if self.numel < 1:
            raise ValueError(f"numel must be >= 1; got {self.numel}")

    @classmethod
    def unchecked(cls, indices: Tensor, values: Tensor, numel: int) -> SparseMessage:
        """A message whose parts the caller made to the rules above itself (the compiled
        selection writes fresh 1-D int32 indices and values of one length): the same object
        without ``__post_init__``'s checks, which take about as long as selecting from 1,000
        entries."""
        msg = object.__new__(cls)
        fields = msg.__dict__  # frozen: written through the instance dict, as __init__ would
        fields["indices"], fields["values"], fields["numel"] = indices, values, numel
        return msg

    @property
    def nnz(self) -> int:
        return int(self.indices.numel())

    @property
    def density(self) -> float:
        """Achieved density ``nnz / numel``."""
        return self.nnz / self.numel

    @property
    def nbytes(self) -> int:
        """Exact bytes on the wire (see :func:`message_bytes`)."""
        return message_bytes(self.nnz, self.numel, self.values.dtype)

    def to_dense(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """Scatter into a zero ``(numel,)`` tensor of ``dtype``.

        A message of every entry (``nnz == numel``: its distinct ascending indices are
        0, ..., numel - 1) is its values in order: a copy of them, no scatter.
        """
        if self.nnz == self.numel:
            return self.values.to(dtype, copy=True)
        out = torch.zeros(self.numel, dtype=dtype, device=self.values.device)
        out[self.indices.long()] = self.values.to(dtype)
        return out

    def add_to_(self, x: Tensor) -> Tensor:
        """``x[indices] += values`` in place (``x``: ``(numel,)``); returns ``x``."""
        self._check_target(x)
        return x.index_add_(0, self.indices.long(), self.values.to(x.dtype))

    def subtract_from_(self, x: Tensor) -> Tensor:
        """``x[indices] -= values`` in place (``x``: ``(numel,)``); returns ``x``.

        With ``x`` a copy of ``p`` this is :func:`~sparsgd.compress.base.residual_after`
        done in a buffer the caller owns: the same subtraction at the same positions.
        """
        self._check_target(x)
        indices = self.indices.long()
        x[indices] -= self.values.to(x.dtype)
        return x

    def _check_target(self, x: Tensor) -> None:
        if x.dim() != 1 or x.numel() != self.numel:
            raise ValueError(
                f"x must be flat with numel={self.numel} to take this message; got shape "
                f"{tuple(x.shape)}"
            )


def gather_message(
    x: Tensor,
    indices: Tensor,
    value_dtype: torch.dtype = torch.float32,
    scale: float = 1.0,
) -> SparseMessage:
    """The message sending ``scale * x[indices]`` (``indices`` ascending, any integer dtype).

    Values are cast to ``value_dtype``; a cast that overflows (float16 holds at most 65504)
    raises :class:`NonFiniteError` instead of sending an Inf that would poison the residual.
    Every index (``len(indices) == numel``, ascending: 0, ..., numel - 1) copies ``x``
    without a gather; a finite sum proves the values finite (a NaN/Inf makes it NaN/Inf), the
    element-wise test runs only when it is not.
    """
    check_value_dtype(value_dtype)
    numel = x.numel()
    values = x.clone() if indices.numel() == numel else x[indices]
    if scale != 1.0:
        values = values * scale
    values = values.to(value_dtype)
    if (
        values.numel() > 0
        and not math.isfinite(float(values.sum()))
        and not bool(torch.isfinite(values).all())
    ):
        raise NonFiniteError(
            f"values must be finite in {value_dtype}; got {int((~values.isfinite()).sum())} "
            f"non-finite of {values.numel()} (largest |value| {float(x[indices].abs().max())} "
            f"times scale {scale})"
        )
    return SparseMessage(indices.to(index_dtype(numel)), values, numel)
