"""The emulated cluster: built as described, shaped, reachable only inside, always torn down."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from sparsgd.lab.cluster import Cluster, Rate, lab_namespaces

RATE = "100mbit"
PAYLOAD_BYTES = 4_000_000  # 0.32 s at 100 Mbit/s: well past tbf's 64 KiB bucket
# a shaped link cannot carry more than its rate; the bucket lets the first burst through at
# once, so the bound leaves it out: at least (bytes - burst) / rate seconds
RECEIVER = (
    "import socket,sys\n"
    "s=socket.socket();s.bind((sys.argv[1],5999));s.listen(1);print('ready',flush=True)\n"
    "c,_=s.accept();n=0\n"
    "while (b:=c.recv(1<<20)):n+=len(b)\n"
    "print(n)\n"
)
SENDER = (
    "import socket,sys,time\n"
    "s=socket.create_connection((sys.argv[1],5999));t=time.perf_counter()\n"
    f"s.sendall(b'x'*{PAYLOAD_BYTES});s.shutdown(socket.SHUT_WR);s.recv(1);s.close()\n"
    "print(time.perf_counter()-t)\n"
)


def test_rate_parsing_and_refusals():
    assert Rate.parse("100mbit").bits_per_s == 100_000_000
    assert Rate.parse("1.5gbit").bits_per_s == 1_500_000_000
    assert str(Rate.parse("10gbit")) == "10gbit"
    for bad in ("fast", "100", "100mb", "0mbit", "500kbit", "1000gbit"):
        with pytest.raises(ValueError, match="rate"):
            Rate.parse(bad)


def test_bad_sizes_refused_before_building():
    with pytest.raises(ValueError, match="nodes must be in"):
        Cluster(0, Rate.parse(RATE))
    with pytest.raises(ValueError, match="lab_id"):
        Cluster(2, Rate.parse(RATE), lab_id="a b")


def test_lab_builds_shapes_and_tears_down(lab_machine):
    with Cluster(3, Rate.parse(RATE)) as lab:
        mine = {lab.hub, *(n.namespace for n in lab.nodes)}
        assert mine <= set(lab_namespaces())
        receiver = subprocess.Popen(
            [*lab.nodes[2].prefix, sys.executable, "-c", RECEIVER, lab.nodes[2].address],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert receiver.stdout.readline().strip() == "ready"
            sent = subprocess.run(
                [*lab.nodes[0].prefix, sys.executable, "-c", SENDER, lab.nodes[2].address],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            received = int(receiver.communicate(timeout=60)[0].strip())
        finally:
            receiver.kill()
        seconds = float(sent.stdout.strip())
        assert received == PAYLOAD_BYTES
        floor = (PAYLOAD_BYTES - lab.rate.burst_bytes()) / lab.rate.bytes_per_s
        assert seconds >= 0.95 * floor, f"{seconds:.3f} s beats the shaped rate's {floor:.3f} s"
    assert not mine & set(lab_namespaces())


def test_nodes_have_no_route_out(lab_machine):
    with Cluster(2, Rate.parse(RATE)) as lab:
        routes = subprocess.run(
            [*lab.nodes[0].prefix, "ip", "route", "show"], capture_output=True, text=True
        ).stdout
        assert "default" not in routes
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert lab.lab_id not in links  # nothing of the lab in the host's namespace


def test_teardown_on_error_and_two_labs_apart(lab_machine):
    with pytest.raises(RuntimeError, match="boom"), Cluster(2, Rate.parse(RATE)) as one:
        with Cluster(2, Rate.parse(RATE)) as two:
            assert one.hub != two.hub
            assert set(n.namespace for n in one.nodes).isdisjoint(n.namespace for n in two.nodes)
        raise RuntimeError("boom")
    deadline = time.monotonic() + 5
    while one.hub in lab_namespaces() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert one.hub not in lab_namespaces()
