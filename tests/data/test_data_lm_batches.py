"""batchify / bptt_batch: columns are contiguous text and every target is visited once."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsgd.data import batchify, bptt_batch, bptt_starts


def test_batchify_columns_are_contiguous_pieces() -> None:
    ids = torch.arange(23)
    data = batchify(ids, 4)  # T = 5, the last 3 tokens dropped
    assert data.shape == (5, 4)
    for column in range(4):
        assert data[:, column].tolist() == list(range(column * 5, column * 5 + 5))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=4, max_value=300),
    batch=st.integers(min_value=1, max_value=8),
    bptt=st.integers(min_value=1, max_value=40),
)
def test_windows_cover_every_target_once(n: int, batch: int, bptt: int) -> None:
    if n // batch < 2:
        return
    data = batchify(torch.arange(n), batch)
    targets = []
    for start in bptt_starts(data, bptt):
        inputs, target = bptt_batch(data, start, bptt)
        assert inputs.shape == target.shape and inputs.shape[0] <= bptt
        assert torch.equal(target, inputs + 1)  # the next token of the same column
        targets.append(target)
    assert torch.equal(torch.cat(targets), data[1:])


def test_errors() -> None:
    with pytest.raises(ValueError, match="ids must be a 1-D token stream"):
        batchify(torch.zeros(2, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="batch must be a positive integer; got 0"):
        batchify(torch.arange(10), 0)
    with pytest.raises(ValueError, match="need at least 2"):
        batchify(torch.arange(10), 6)
    data = batchify(torch.arange(10), 2)
    with pytest.raises(ValueError, match=r"start must be in \[0, 4\); got 4"):
        bptt_batch(data, 4, 2)
    with pytest.raises(ValueError, match="bptt must be >= 1; got 0"):
        bptt_batch(data, 0, 0)
