"""Wire format and byte accounting: one buffer per set, its length is what is counted."""

from __future__ import annotations

import pytest
import torch

from sparsgd.comm.accounting import Ledger, all_reduce_chunk
from sparsgd.comm.sparse_set import Entries
from sparsgd.comm.wire import entry_nbytes, pack, pack_indices, unpack, unpack_indices
from sparsgd.compress.message import message_bytes


@pytest.mark.parametrize("value_dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_pack_then_unpack_gives_the_set_back(value_dtype):
    gen = torch.Generator().manual_seed(7)
    numel = 1000
    indices = torch.sort(torch.randperm(numel, generator=gen)[:37]).values
    values = torch.randn(37, generator=gen).to(value_dtype)
    buffer = pack(Entries(indices, values), numel)
    assert buffer.dtype == torch.uint8
    assert buffer.numel() == 37 * entry_nbytes(numel, value_dtype)
    padded = torch.cat([buffer, torch.full((50,), 255, dtype=torch.uint8)])  # padding ignored
    back = unpack(padded, 37, numel, value_dtype)
    assert torch.equal(back.indices, indices) and back.indices.dtype == torch.int64
    assert torch.equal(back.values, values)
    assert torch.equal(unpack_indices(pack_indices(indices, numel), 37, numel), indices)


def test_entry_sizes_match_the_message_format_of_section_1():
    assert entry_nbytes(10, torch.float32) == message_bytes(1, 10) == 8
    assert entry_nbytes(10, torch.float16) == message_bytes(1, 10, torch.float16) == 6
    assert entry_nbytes(2**31, torch.float32) == message_bytes(1, 2**31) == 12  # int64 indices


def test_ledger_counts_point_to_point_and_ring_collectives():
    ledger = Ledger()
    ledger.send(80)
    ledger.send(80)
    ledger.recv(40)
    ledger.all_gather(40, 4, check=True)  # 3 messages of 40 bytes each way
    ledger.all_reduce(10, 4, 4)  # 6 messages of ceil(10 / 4) = 3 floats each way
    s = ledger.stats
    assert (s.messages_sent, s.bytes_sent) == (2 + 3 + 6, 160 + 120 + 6 * 12)
    assert (s.messages_recv, s.bytes_recv) == (1 + 3 + 6, 40 + 120 + 6 * 12)
    assert (s.check_messages_sent, s.check_bytes_sent) == (3, 120)
    assert (s.payload_messages_sent, s.payload_bytes_sent) == (8, 160 + 72)


def test_one_rank_collectives_cost_nothing():
    ledger = Ledger()
    ledger.all_gather(1000, 1)
    ledger.all_reduce(1000, 4, 1)
    assert ledger.stats.messages_sent == ledger.stats.bytes_sent == 0
    assert all_reduce_chunk(1000, 1) == 1000 and all_reduce_chunk(10, 3) == 4


def test_phases_add_up_and_unknown_phase_is_refused():
    ledger = Ledger()
    for phase in ("select", "comm", "comm"):
        with ledger.phase(phase):
            torch.ones(1000).sum()
    s = ledger.stats
    assert s.apply_s == 0.0  # never entered
    assert min(s.select_s, s.comm_s) >= 0.0
    assert s.total_s == s.select_s + s.comm_s
    assert set(s.as_dict()) >= {"bytes_sent", "comm_s", "total_s"}
    with pytest.raises(ValueError, match="phase must be one of"), ledger.phase("wire"):
        pass
