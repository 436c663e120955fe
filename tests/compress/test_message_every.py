"""A message of every entry (nnz == numel) takes the copy path in to_dense and gather_message:
the same tensors as the scatter and the gather, and the same refusals."""

from __future__ import annotations

import pytest
import torch

from sparsgd.compress.checks import NonFiniteError
from sparsgd.compress.message import SparseMessage, gather_message

D = 50


def test_to_dense_of_every_entry_equals_the_scatter_and_is_a_copy():
    values = torch.randn(D, generator=torch.Generator().manual_seed(0))
    msg = SparseMessage(torch.arange(D, dtype=torch.int32), values, D)
    want = torch.zeros(D, dtype=torch.float64)
    want[torch.arange(D)] = values.double()
    got = msg.to_dense(torch.float64)
    assert torch.equal(got, want)
    same_dtype = msg.to_dense()
    assert torch.equal(same_dtype, values) and same_dtype.data_ptr() != values.data_ptr()


@pytest.mark.parametrize("scale", [1.0, 0.5])
@pytest.mark.parametrize("value_dtype", [torch.float32, torch.float16])
def test_gather_of_every_index_equals_the_gather_and_is_a_copy(scale, value_dtype):
    x = torch.randn(D, generator=torch.Generator().manual_seed(1))
    msg = gather_message(x, torch.arange(D), value_dtype, scale)
    want = (x[torch.arange(D)] * scale).to(value_dtype)
    assert torch.equal(msg.values, want) and msg.indices.dtype == torch.int32
    x.zero_()  # the caller reuses its buffer: the message must not change with it
    assert torch.equal(msg.values, want)


def test_gather_of_every_index_refuses_a_float16_overflow_and_nan():
    x = torch.ones(D)
    x[7] = 1e6  # beyond float16
    with pytest.raises(NonFiniteError, match="1 non-finite"):
        gather_message(x, torch.arange(D), torch.float16)
    x[7] = float("nan")
    with pytest.raises(NonFiniteError, match="non-finite"):
        gather_message(x, torch.arange(D))
