"""The launcher: P spawned workers join one group; a crash stops the run with its traceback."""

from __future__ import annotations

import json

import pytest
import sync_workers

from sparsgd.sync.launch import WorkerFailed, launch, torchrun_env

pytestmark = pytest.mark.timeout(120)  # a hang must fail the test, not block the suite
COLLECTIVE_TIMEOUT_S = 60.0  # far above what a barrier of 3 local processes needs


@pytest.mark.slow
@pytest.mark.multiprocess
def test_spawned_workers_share_one_group(tmp_path):
    launch(sync_workers.allreduce_ranks, str(tmp_path), 3, timeout_s=COLLECTIVE_TIMEOUT_S)
    records = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(3)]
    assert [r["rank"] for r in records] == [0, 1, 2]
    assert all(r["sum"] == 0 + 1 + 2 and r["world"] == 3 for r in records)
    assert {r["by"] for r in records} == {"sparsgd"}


@pytest.mark.slow
@pytest.mark.multiprocess
def test_crash_stops_every_worker_with_the_traceback(tmp_path):
    with pytest.raises(WorkerFailed) as info:
        launch(sync_workers.crash_on_rank_1, str(tmp_path), 3, timeout_s=COLLECTIVE_TIMEOUT_S)
    assert info.value.rank == 1
    message = str(info.value)
    assert "worker rank 1 failed" in message
    assert "ZeroDivisionError: injected failure on rank 1" in message
    assert "crash_on_rank_1" in message  # the traceback, not only the last line
    assert not list(tmp_path.glob("*passed-barrier"))


def test_torchrun_env_read_and_checked():
    assert torchrun_env({}) is None
    env = torchrun_env(
        {"RANK": "2", "WORLD_SIZE": "4", "LOCAL_RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "9"}
    )
    assert (env.rank, env.world_size, env.local_rank, env.master_port) == (2, 4, 0, 9)
    with pytest.raises(ValueError, match="missing MASTER_ADDR, MASTER_PORT"):
        torchrun_env({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match=r"RANK must be in \[0, WORLD_SIZE=2\); got 5"):
        torchrun_env({"RANK": "5", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"})
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer; got 'two'"):
        torchrun_env({"RANK": "0", "WORLD_SIZE": "two", "MASTER_ADDR": "h", "MASTER_PORT": "1"})


def test_bad_worker_count_refused():
    with pytest.raises(ValueError, match="workers must be an integer >= 1; got 0"):
        launch(sync_workers.allreduce_ranks, "unused", 0)
