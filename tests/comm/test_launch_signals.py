"""SIGTERM / SIGINT to a real ``sparsgd train``: every rank is stopped, none outlives the
launcher, and the command exits 143 / 130 with one line instead of a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(240)]

START_WAIT_S = 120.0  # the command starts its ranks and they train (loaded 2-core machine)
EXIT_WAIT_S = 60.0  # forwarded signal, the launcher's bounded grace, then SIGKILL: far less
SMALL = ["--model", "logreg", "--dataset", "synthetic", "--steps", "1000000", "--log-every", "1"]
MODES = {  # mode -> (extra options, ranks the launcher starts)
    "sync": (["--workers", "2", "--no-progress"], 2),
    "async": (["--workers", "2", "--delay", "constant:0.005"], 3),
}


def _children(pid: int) -> dict[int, str]:
    """pid -> start time (field 22 of /proc/PID/stat) of every child of ``pid``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) "
        if int(fields[1]) == pid:
            found[int(entry)] = fields[19]
    return found


def _survivors(children: dict[int, str]) -> list[int]:
    """The children still running (same start time, not a zombie)."""
    alive = []
    for pid, started in children.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[19] == started and fields[0] != "Z":
            alive.append(pid)
    return alive


def _training(out: Path) -> bool:
    log = out / "log.jsonl"
    return log.is_file() and log.stat().st_size > 0


# Each signal once and each mode once: the launcher forwards SIGTERM and SIGINT by one code
# path (comm.processes.SignalWatch, stop_children), which only turns the number into the exit
# code and the name; the modes differ in the ranks being stopped (two S-SGD ranks; a server
# and two workers)
@pytest.mark.parametrize(
    ("mode", "signum", "code"),
    [("sync", signal.SIGINT, 130), ("async", signal.SIGTERM, 143)],
)
def test_a_signal_stops_every_rank_and_exits_with_its_code(tmp_path, mode, signum, code):
    out = tmp_path / "run"
    extra, ranks = MODES[mode]
    command = [sys.executable, "-m", "sparsgd.cli.main", "train", "--mode", mode, *SMALL, *extra]
    proc = subprocess.Popen(
        [*command, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a shell job would have
    )
    children: dict[int, str] = {}
    try:
        deadline = time.monotonic() + START_WAIT_S
        while len(children) < ranks or not _training(out):
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, f"no training within {START_WAIT_S} s"
            children.update(_children(proc.pid))
            time.sleep(0.05)
        os.killpg(proc.pid, signum)  # the whole job, like Ctrl-C in a terminal
        _, stderr = proc.communicate(timeout=EXIT_WAIT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(EXIT_WAIT_S)
    text = stderr.decode()
    assert proc.returncode == code, text[-2000:]
    assert _survivors(children) == []
    assert "Traceback" not in text and "leaked semaphore" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[-1] == f"sparsgd: stopped by {signal.Signals(signum).name}"
