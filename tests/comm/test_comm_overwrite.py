"""``overwrite=True``: a sparse collective writes the residual into the handed-over ``p``.

Same bits as the default call, same traffic; the default never changes ``p``; dense, whose
residual is 0, is unchanged by the keyword.
"""

from __future__ import annotations

import overwrite_workers as ow
import pytest
import torch

from sparsgd.comm.launch import LaunchOptions, launch

GROUP_TIMEOUT_S = 120.0  # far above what 3 processes need; a hang must fail, not block
OPTIONS = LaunchOptions(timeout_s=GROUP_TIMEOUT_S, threads=1)
KEYS = [f"{name}/{c}/{size}" for name, c in ow.SETUPS for size in ow.SIZES]


@pytest.fixture(scope="module")
def outcomes() -> list[dict]:
    return launch(ow.run_overwrite, ow.WORLD, (), OPTIONS, deadline_s=GROUP_TIMEOUT_S)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
@pytest.mark.parametrize("key", KEYS)
def test_a_handed_over_p_gives_the_same_bits_and_becomes_the_residual(outcomes, key):
    sparse = not key.startswith("dense/")
    for rank, outcome in enumerate(outcomes):
        for step, got in enumerate(outcome[key]):
            where = (key, rank, step)
            for field in ("total", "residual", "sent"):
                assert torch.equal(got["default"][field], got["handed"][field]), (*where, field)
            assert got["default_p_unchanged"], where
            assert got["residual_in_p"] == sparse, where
            assert got["handed_p_is_residual"] == sparse, where
            assert got["bytes"][0] == got["bytes"][1] and got["messages"][0] == got["messages"][1]
