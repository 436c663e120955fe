"""Item 3 of issue 13: states cross ranks as JSON and tensor bytes, never as pickles.

The round trip keeps every type a checkpoint holds (int keys, tuples, NaN, every tensor dtype
and shape, bit for bit); anything else is refused when sent; a frame that holds a pickle is
refused when received, and nothing in it runs. The collectives are checked on 3 processes."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import faults_workers as fw
import pytest
import torch

from sparsgd.comm.launch import LaunchOptions, launch
from sparsgd.sync.state_wire import LENGTH_BYTES, decode, encode

WORLD = 3
DEADLINE_S = 120.0
SRC = Path(__file__).parents[2] / "src" / "sparsgd"


def _same(a, b) -> bool:
    """Equal values and types; tensors equal in dtype, shape and bits; NaN equals NaN."""
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or (a.dtype, a.shape) != (b.dtype, b.shape):
            return False
        bits = [t.contiguous().reshape(-1).view(torch.uint8) for t in (a, b)]
        return torch.equal(bits[0], bits[1])
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def test_round_trip_keeps_every_type_bit_for_bit():
    state = {
        **fw.state_of(1),
        "scalar": torch.tensor(2.5, dtype=torch.bfloat16),
        "empty": torch.empty(0, 3),
        "half": torch.randn(4, 2, generator=torch.Generator().manual_seed(0)).half(),
        "int32": torch.arange(5, dtype=torch.int32)[::2],  # not contiguous
        "list": [1, [2.0, "x"], -3],
    }
    back = decode(encode(state))
    assert _same(state, back)
    assert not _same({0: 1}, {"0": 1})  # the comparison itself tells int keys from str keys


@pytest.mark.parametrize(
    ("value", "named"),
    [(object(), "object"), ({(1, 2): 3}, "dict keys"), ({"a": {1.5: 2}}, "dict keys")],
)
def test_anything_but_plain_data_and_tensors_is_refused(value, named):
    with pytest.raises(TypeError, match=named):
        encode({"part": value})


def test_a_pickle_in_a_frame_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"

    class Trap:
        def __reduce__(self):
            return (marker.write_text, ("pwned",))

    payload = pickle.dumps(Trap())
    frame = torch.tensor(
        list(len(payload).to_bytes(LENGTH_BYTES, "little")) + list(payload), dtype=torch.uint8
    )
    with pytest.raises(UnicodeDecodeError):
        decode(frame)
    assert not marker.exists()
    with pytest.raises(ValueError, match="exceeds the frame"):
        decode(frame[: LENGTH_BYTES + 2])


def test_no_object_collective_is_left_in_the_library():
    calls = ("broadcast_object_list(", "gather_object(", "scatter_object_list(")
    for file in SRC.rglob("*.py"):
        text = file.read_text(encoding="utf-8")
        assert not any(c in text for c in calls), file


@pytest.mark.multiprocess
@pytest.mark.timeout(180)
def test_state_collectives_on_three_ranks():
    results = launch(
        fw.run_state_collectives, WORLD, (), LaunchOptions(timeout_s=60), deadline_s=DEADLINE_S
    )
    expected = [fw.state_of(r) for r in range(WORLD)]
    for rank, got in enumerate(results):
        assert _same(got["broadcast"], expected[0])
        assert _same(got["scattered"], expected[rank])
        assert _same(got["all"], expected)
        assert got["gathered"] is None if rank else _same(got["gathered"], expected)
