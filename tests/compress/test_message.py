"""The wire format: index dtype, exact byte count, and values that cannot be sent."""

from __future__ import annotations

import pytest
import torch

from sparsgd.compress.checks import NonFiniteError
from sparsgd.compress.message import (
    SparseMessage,
    dense_bytes,
    gather_message,
    index_dtype,
    message_bytes,
)


@pytest.mark.parametrize(
    ("numel", "dtype"),
    [(1, torch.int32), (2**31 - 1, torch.int32), (2**31, torch.int64), (2**40, torch.int64)],
)
def test_index_dtype(numel: int, dtype: torch.dtype) -> None:
    assert index_dtype(numel) == dtype


@pytest.mark.parametrize(
    ("n", "numel", "value_dtype", "expected"),
    [
        (10, 1000, torch.float32, 80),  # 4 + 4 bytes per entry
        (10, 1000, torch.float16, 60),  # 4 + 2
        (10, 2**31, torch.float32, 120),  # 8 + 4
        (10, 2**31, torch.float16, 100),  # 8 + 2
        (0, 5, torch.float32, 0),
    ],
)
def test_message_bytes_formula(n: int, numel: int, value_dtype: torch.dtype, expected: int) -> None:
    assert message_bytes(n, numel, value_dtype) == expected


def test_message_nbytes_is_its_buffers() -> None:
    """The byte count is what the two tensors actually occupy."""
    x = torch.randn(100)
    msg = gather_message(x, torch.tensor([1, 5, 9]), torch.float16)
    buffers = msg.indices.numel() * msg.indices.element_size()
    buffers += msg.values.numel() * msg.values.element_size()
    assert msg.nbytes == buffers == 18
    assert dense_bytes(100) == 400


def test_float16_overflow_is_refused() -> None:
    x = torch.tensor([1.0, 70000.0, 2.0])
    with pytest.raises(NonFiniteError, match="float16"):
        gather_message(x, torch.tensor([1]), torch.float16)
    with pytest.raises(NonFiniteError, match="scale"):
        gather_message(x, torch.tensor([0]), torch.float16, scale=1e5)


def test_message_validates_its_parts() -> None:
    with pytest.raises(ValueError, match="same length"):
        SparseMessage(torch.tensor([0, 1], dtype=torch.int32), torch.tensor([1.0]), 5)
    with pytest.raises(ValueError, match="int32 or int64"):
        SparseMessage(torch.tensor([0.0]), torch.tensor([1.0]), 5)


def test_add_to_and_subtract_from_touch_only_the_indices() -> None:
    msg = SparseMessage(torch.tensor([1, 3], dtype=torch.int32), torch.tensor([2.0, -1.0]), 5)
    x = torch.ones(5, dtype=torch.float64)
    assert msg.add_to_(x) is x
    assert x.tolist() == [1.0, 3.0, 1.0, 0.0, 1.0]
    assert msg.subtract_from_(x).tolist() == [1.0] * 5
    with pytest.raises(ValueError, match=r"x must be flat with numel=5.*got shape \(4,\)"):
        msg.add_to_(torch.ones(4))


def test_message_values_may_be_a_collectives_dtype_but_not_an_integer() -> None:
    for dtype in (torch.bfloat16, torch.float64):
        assert SparseMessage(torch.tensor([0]), torch.ones(1, dtype=dtype), 3).nnz == 1
    with pytest.raises(ValueError, match="values must be one of"):
        SparseMessage(torch.tensor([0]), torch.ones(1, dtype=torch.int64), 3)
