"""Wire format and byte accounting: one buffer per set, its length is what is counted."""

from __future__ import annotations

import pytest
import torch

from sparsgd.comm.stats import Ledger, all_reduce_chunk
from sparsgd.comm.wire import HEADER_NBYTES, entry_nbytes, pack_, unpack
from sparsgd.compress.message import SparseMessage, message_bytes


@pytest.mark.parametrize("value_dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_pack_then_unpack_gives_the_set_back(value_dtype):
    gen = torch.Generator().manual_seed(7)
    numel = 1000
    indices = torch.sort(torch.randperm(numel, generator=gen)[:37]).values
    values = torch.randn(37, generator=gen).to(value_dtype)
    msg = SparseMessage(indices, values, numel)
    buffer = torch.full((37 * entry_nbytes(numel, value_dtype) + 50,), 255, dtype=torch.uint8)
    written = pack_(buffer, msg)  # into a larger reused buffer: the rest is padding, ignored
    assert written.dtype == torch.uint8
    assert written.numel() == 37 * entry_nbytes(numel, value_dtype)
    assert written.data_ptr() == buffer.data_ptr()  # a view: nothing new of buffer size
    status, back = unpack(buffer, 37, numel, value_dtype)
    assert status == 0
    assert torch.equal(back.indices, indices) and back.indices.dtype == torch.int64
    assert torch.equal(back.values, values)
    only = torch.zeros(HEADER_NBYTES + 37 * entry_nbytes(numel, None), dtype=torch.uint8)
    assert pack_(only, msg, status=-5, values=False).numel() == only.numel()
    status, positions = unpack(only, 37, numel, None, status=True)
    assert status == -5 and torch.equal(positions.indices, indices)


def test_status_header_sits_in_front_of_the_entries():
    msg = SparseMessage(torch.tensor([3, 9]), torch.tensor([1.5, -2.0]), 10)
    buffer = torch.zeros(HEADER_NBYTES + 2 * entry_nbytes(10, torch.float32), dtype=torch.uint8)
    pack_(buffer, msg, status=2**40 + 3)
    assert int(buffer[:HEADER_NBYTES].view(torch.int64)[0]) == 2**40 + 3
    status, back = unpack(buffer, 2, 10, torch.float32, status=True)
    assert status == 2**40 + 3
    assert back.indices.tolist() == [3, 9] and back.values.tolist() == [1.5, -2.0]


def test_entry_sizes_match_the_message_format_of_section_1():
    assert entry_nbytes(10, torch.float32) == message_bytes(1, 10) == 8
    assert entry_nbytes(10, torch.float16) == message_bytes(1, 10, torch.float16) == 6
    assert entry_nbytes(2**31, torch.float32) == message_bytes(1, 2**31) == 12  # int64 indices
    assert entry_nbytes(10, None) == 4 and entry_nbytes(2**31, None) == 8  # indices only


def test_ledger_counts_point_to_point_and_ring_collectives():
    ledger = Ledger()
    ledger.send(80)
    ledger.send(80)
    ledger.recv(40)
    ledger.send(80, check_bytes=8)  # a tree message with its status header
    ledger.recv(40)
    ledger.all_gather(40, 4, check=True)  # 3 messages of 40 bytes each way
    ledger.all_reduce(10, 4, 4)  # 6 messages of ceil(10 / 4) = 3 floats each way
    ledger.all_reduce(9, 4, 4, check_numel=1)  # 8 payload + 1 status: 3 floats, not 2
    s = ledger.stats
    assert (s.messages_sent, s.bytes_sent) == (3 + 3 + 6 + 6, 240 + 120 + 6 * 12 + 6 * 12)
    assert (s.messages_recv, s.bytes_recv) == (2 + 3 + 6 + 6, 80 + 120 + 6 * 12 + 6 * 12)
    assert (s.check_messages_sent, s.check_bytes_sent) == (3, 120 + 8 + 6 * 4)
    assert (s.check_messages_recv, s.check_bytes_recv) == (3, 120 + 6 * 4)
    assert (s.payload_messages_sent, s.payload_bytes_sent) == (15, 232 + 72 + 6 * 8)


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
