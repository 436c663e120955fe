"""``sparsgd lab``: refused up front where the machine cannot, torn down on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sparsgd.cli.main import main
from sparsgd.lab import cluster
from sparsgd.lab.cluster import lab_namespaces

STARTUP_S = 120.0  # the lab and P=2 ranks start on a loaded 2-core machine
STOP_S = 60.0  # SIGTERM to exit: the launcher's grace, then the lab's teardown


def test_refuses_when_not_root(monkeypatch, capsys):
    monkeypatch.setattr(cluster.os, "geteuid", lambda: 1000)
    before = set(lab_namespaces()) if os.geteuid() == 0 else set()
    assert main(["lab", "train", "--rate", "100mbit", "--workers", "2", "--steps", "1"]) == 2
    assert "missing: root" in capsys.readouterr().err
    assert main(["lab", "check"]) == 1
    assert "missing: root" in capsys.readouterr().out
    if os.geteuid() == 0:
        assert set(lab_namespaces()) == before  # nothing was built


def test_bad_rate_and_mode_refused(capsys):
    assert main(["lab", "train", "--rate", "fast", "--workers", "2"]) == 2
    assert "rate must be" in capsys.readouterr().err
    assert main(["lab", "train", "--rate", "1gbit", "--mode", "async"]) == 2
    assert "--mode sync only" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
def test_sigterm_tears_the_lab_down(lab_machine, tmp_path):
    command = [sys.executable, "-m", "sparsgd.cli.main", "lab", "train", "--rate", "100mbit"]
    command += ["--workers", "2", "--epochs", "100", "--no-progress", "--out", str(tmp_path / "r")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + STARTUP_S
        log = tmp_path / "r" / "log.jsonl"
        while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.5)
        assert log.exists(), "training did not start in time"
        mine = [n for n in lab_namespaces() if n.split("-")[1] == str(proc.pid)]
        assert len(mine) == 3  # hub and two nodes
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=STOP_S)
    finally:
        proc.kill()
    assert proc.returncode in (130, 143), err
    assert not [n for n in lab_namespaces() if n.split("-")[1] == str(proc.pid)]
    assert not os.path.exists(f"/etc/netns/{mine[0]}")


def test_bench_ddp_bad_rate_refused(capsys):
    assert main(["bench", "ddp", "--lab", "fast"]) == 2
    assert "rate must be" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
def test_bench_ddp_on_the_lab_is_held_to_the_rate(lab_machine, capsys):
    """Every variant runs across two namespaces; DDP's all-reduce step cannot beat the link:
    each rank must hand the other at least half of its d float32 gradients."""
    width, layers, rate = 256, 2, cluster.Rate.parse("10mbit")
    args = ["--width", str(width), "--layers", str(layers), "--bucket-mb", "0.2", "--repeats", "1"]
    assert main(["bench", "ddp", *args, "--lab", str(rate), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "lab links at 10mbit" in out["settings"]
    rows = {row["variant"]: row for row in out["rows"]}
    d = layers * (width * width + width)
    floor_ms = (d * 4 / 2 - rate.burst_bytes()) / rate.bytes_per_s * 1e3
    assert rows["allreduce"]["step_ms"] >= floor_ms, (rows["allreduce"], floor_ms)
    assert rows["sparse_many"]["collectives_per_step"] > 1.0
