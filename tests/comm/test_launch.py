"""The launcher: results come back in rank order; a failure or a hang ends the run; the store and
gloo listen on the named address only; a rank's host placement reaches it."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import comm_workers as cw
import launch_workers as lw
import pytest

from sparsgd.comm.launch import Group, Host, LaunchOptions, WorkerFailed, launch
from sparsgd.comm.processes import failure
from sparsgd.comm.worker_env import torchrun_env

pytestmark = pytest.mark.timeout(120)  # a hang must fail the test, not block the suite
HANG_TIMEOUT_S = 2.0  # the run must end by TimeoutError whether the child is starting or asleep
COLLECTIVE_TIMEOUT_S = 60.0  # far above what a barrier of 3 local processes needs
OPTIONS = LaunchOptions(timeout_s=COLLECTIVE_TIMEOUT_S)
READY_WAIT_S = 60.0  # ranks starting on a loaded machine: import torch, join the group
LISTEN = "0A"  # socket state in /proc/net/tcp


@pytest.fixture(scope="module")
def held_group(tmp_path_factory) -> dict:
    """One launch of 3 ranks for two tests: each rank all-reduces and writes its record, then
    waits for a go-ahead; meanwhile this process lists the listening sockets.

    Returns the results, the folder, the store's port, every listener, this process's socket
    inodes and the ranks' (read while the ranks were alive).
    """
    folder = tmp_path_factory.mktemp("held_group")
    group = Group(lw.allreduce_then_hold, 3, (str(folder),), OPTIONS)
    group.start()
    try:
        deadline = time.monotonic() + READY_WAIT_S
        while not all((folder / f"ready-{r}").exists() for r in range(3)):
            assert time.monotonic() < deadline, "the ranks never joined their group"
            time.sleep(0.05)
        seen = {
            "folder": folder,
            "port": group.port,
            "listeners": _listeners(),
            "mine": _socket_inodes([os.getpid()]),
            "ranks": _socket_inodes(group.pids),
        }
        (folder / "go").write_text("")
        seen["results"] = group.wait(deadline_s=READY_WAIT_S)
    finally:
        group.close()
    return seen


@pytest.mark.multiprocess
def test_spawned_workers_share_one_group(held_group):
    folder, results = held_group["folder"], held_group["results"]
    records = [json.loads((folder / f"rank-{r}.json").read_text()) for r in range(3)]
    assert results == records
    assert [r["rank"] for r in records] == [0, 1, 2]
    assert all(r["sum"] == 0 + 1 + 2 and r["world"] == 3 for r in records)
    assert {r["by"] for r in records} == {"sparsgd"}


@pytest.mark.multiprocess
def test_files_a_rank_left_open_are_written_when_it_ends(tmp_path):
    """A rank that finished ends without the interpreter's teardown (launch_child, (6)):
    what it wrote into files it never closed is on disk all the same."""
    assert launch(lw.leave_files_open, 2, (str(tmp_path),), OPTIONS) == [0, 1]
    for rank in range(2):
        assert (tmp_path / f"held-{rank}.txt").read_text() == f"held by rank {rank}\n"
        assert (tmp_path / f"dropped-{rank}.txt").read_text() == f"dropped by rank {rank}\n"


@pytest.mark.multiprocess
def test_a_failing_rank_stops_the_group_with_its_traceback():
    with pytest.raises(WorkerFailed) as info:
        launch(cw.fail_on_rank_1, 2, (), OPTIONS, deadline_s=60.0)
    message = str(info.value)
    assert message.startswith("rank 1 of 2 failed")
    assert "ZeroDivisionError: injected failure on rank 1" in message
    assert (info.value.rank, info.value.exit_code) == (1, 1)


@pytest.mark.multiprocess
def test_crash_stops_every_worker_with_the_traceback(tmp_path):
    with pytest.raises(WorkerFailed) as info:
        launch(lw.crash_on_rank_1, 3, (str(tmp_path),), OPTIONS)
    assert info.value.rank == 1
    message = str(info.value)
    assert message.startswith("rank 1 of 3 failed")
    assert "ZeroDivisionError: injected failure on rank 1" in message
    assert "crash_on_rank_1" in message  # the traceback, not only the last line
    assert not list(tmp_path.glob("*passed-barrier"))


@pytest.mark.multiprocess
def test_a_hang_becomes_a_timeout_error():
    options = LaunchOptions(timeout_s=HANG_TIMEOUT_S)
    with pytest.raises(TimeoutError, match=r"ran past 2.0 s; killed ranks \[0\]"):
        launch(cw.sleep_forever, 1, (), options, deadline_s=HANG_TIMEOUT_S)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="world must be an integer >= 1; got 0"):
        launch(cw.sleep_forever, 0)
    with pytest.raises(ValueError, match="timeout_s must be > 0; got 0"):
        launch(cw.sleep_forever, 1, (), LaunchOptions(timeout_s=0))
    with pytest.raises(ValueError, match=r"hosts must hold one Host per rank \(2\); got 1"):
        Group(cw.sleep_forever, 2, (), LaunchOptions(hosts=(Host(),)))
    with pytest.raises(ValueError, match=r"required ranks must be in \[0, 2\); got \[2\]"):
        Group(cw.sleep_forever, 2, (), LaunchOptions(required=(2,)))
    with pytest.raises(ValueError, match="prefix must be non-empty strings; got"):
        Host(prefix=("ip", ""))
    with pytest.raises(RuntimeError, match="start"):
        Group(cw.sleep_forever, 1).wait()


def test_the_first_failure_by_wall_clock_is_named():
    late = {"error": "Traceback\nRuntimeError: connection closed by peer\n", "failed_at": 20.0}
    early = {"error": "Traceback\nZeroDivisionError: cause\n", "failed_at": 10.0}
    err = failure([0, 1], 0, [late, early, {"result": 1}], [1, 1, 0])
    assert (err.rank, err.exit_code) == (1, 1)
    assert str(err).startswith("rank 1 of 3 failed (then ranks [0]):\nTraceback")
    assert "(rank 0 also failed, probably as a consequence: RuntimeError: connection" in str(err)
    # a rank that died by a signal, seen first, is the cause of the others' errors
    err = failure([0, 2], 2, [late, {"result": 1}, None], [1, 0, -9])
    assert (err.rank, err.exit_code) == (2, -9)
    assert "(no Python traceback: the process ended with signal 9)" in str(err)


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


def _address(hex_address: str) -> str:
    """/proc/net/tcp{,6} address (32-bit words in host order, little-endian here) as text."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words)


def _listeners() -> list[tuple[str, int, int]]:
    """(address, port, socket inode) of every listening TCP socket of this network namespace."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN:
                address, port = fields[1].split(":")
                out.append((_address(address), int(port, 16), int(fields[9])))
    return out


def _socket_inodes(pids: list[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:  # closed meanwhile (the listing's own descriptor)
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:[") : -1]))
    return inodes


@pytest.mark.multiprocess
def test_local_ranks_listen_on_loopback_only(held_group):
    listeners, port = held_group["listeners"], held_group["port"]
    # the store: on 127.0.0.1 only; no 0.0.0.0 or :: listener on its port
    assert [a for a, p, _ in listeners if p == port] == ["127.0.0.1"]
    assert port in {p for _, p, inode in listeners if inode in held_group["mine"]}
    # every rank's gloo listeners: on the loopback address too
    ranks = [a for a, _, inode in listeners if inode in held_group["ranks"]]
    assert ranks and set(ranks) == {"127.0.0.1"}
    assert [r["rank"] for r in held_group["results"]] == [0, 1, 2]  # every rank went on


@pytest.mark.multiprocess
def test_named_address_prefix_and_host_env_reach_every_rank():
    host = Host(
        prefix=("env", "SPARSGD_TEST_PREFIX=ran"),
        interface="lo",
        env=(("SPARSGD_TEST_HOST", "h"),),
    )
    options = LaunchOptions(timeout_s=COLLECTIVE_TIMEOUT_S, address="127.0.0.2", hosts=(host, host))
    names = ("SPARSGD_TEST_PREFIX", "SPARSGD_TEST_HOST", "GLOO_SOCKET_IFNAME")
    group = Group(lw.report_env, 2, (names,), options)
    group.start()
    try:
        assert [a for a, port, _ in _listeners() if port == group.port] == ["127.0.0.2"]
        results = group.wait(deadline_s=READY_WAIT_S)
    finally:
        group.close()
    seen = {"SPARSGD_TEST_PREFIX": "ran", "SPARSGD_TEST_HOST": "h", "GLOO_SOCKET_IFNAME": "lo"}
    assert results == [seen, seen]
