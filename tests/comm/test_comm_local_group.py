"""The local launcher: results come back in rank order; a failure or a hang ends the run."""

from __future__ import annotations

import comm_workers as cw
import pytest

from sparsgd.comm.local_group import free_port, run_local_group

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(120)]
HANG_TIMEOUT_S = 5.0  # the run must end by TimeoutError whether the child is starting or asleep


@pytest.mark.slow
def test_a_failing_rank_stops_the_group_with_its_traceback():
    with pytest.raises(RuntimeError) as info:
        run_local_group(cw.fail_on_rank_1, 2, timeout_s=60.0)
    message = str(info.value)
    assert message.startswith("rank 1 of 2 failed")
    assert "ZeroDivisionError: injected failure on rank 1" in message


@pytest.mark.slow
def test_a_hang_becomes_a_timeout_error():
    with pytest.raises(TimeoutError, match=r"ran past 5.0 s; killed ranks \[0\]"):
        run_local_group(cw.sleep_forever, 1, timeout_s=HANG_TIMEOUT_S)


def test_arguments_are_checked_and_ports_are_real():
    assert 0 < free_port() < 65536
    with pytest.raises(ValueError, match="world must be >= 1; got 0"):
        run_local_group(cw.sleep_forever, 0)
    with pytest.raises(ValueError, match="timeout_s must be > 0; got 0"):
        run_local_group(cw.sleep_forever, 1, timeout_s=0)
