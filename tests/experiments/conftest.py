"""One torch thread for the experiments run in the test process, as ``sparsgd experiment run``.

On two shared cores, two intra-op threads spend most of their time waiting for each other
(the one-process smoke runs took 25 s with two threads and 2 s with one). Restored after.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
