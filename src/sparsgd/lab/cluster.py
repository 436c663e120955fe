"""An emulated cluster on one Linux machine: P nodes, one bridge, every link shaped to a rate.

    with Cluster(nodes=4, rate=Rate.parse("100mbit")) as cluster:
        cluster.nodes[2].address          # "198.18.0.3"
        cluster.nodes[2].prefix           # ["ip", "netns", "exec", "sgdlab-...-n2"]

The layout (every name carries the lab's unique id, so two labs on one machine never meet):

    node i: namespace  sgdlab-<id>-n<i>, interface eth0, address 198.18.0.<i+1>/24
            eth0 egress shaped by tbf at ``rate``           (1) the node's upload
    hub:    namespace  sgdlab-<id>-hub, bridge br0, port p<i> = the other end of node i's veth
            p<i> egress shaped by tbf at ``rate``           (2) the node's download

(3) The bridge lives in the lab's own hub namespace, not in the host's: no interface of the
lab exists in the host namespace, no node has a default route, so the nodes can reach each
other and nothing else (traffic only between the lab's namespaces). 198.18.0.0/15 is the
address block set aside for network benchmarks (RFC 2544).
(4) Each node gets its own hosts file, /etc/netns/<namespace>/hosts, which ``ip netns exec``
puts in place of /etc/hosts for programs on that node: ``node0`` ... ``node<P-1>`` name the
nodes, and this machine's host name resolves to the node's own address instead of loopback,
so a rendezvous that advertises the host name (torchrun's c10d backend) reaches the node.
(5) Teardown deletes the namespaces (a namespace's deletion removes its veth ends and their
shaping) and the hosts files; it runs on every exit of the ``with`` block and is idempotent.

It emulates bandwidth, not latency: tbf queues packets to hold the rate, but adds no delay of
its own beyond queueing (netem, which adds latency, is not available in every kernel). A veth
pair inside one machine has microseconds of latency, far less than a real network's.

Why iproute2 (``ip``, ``tc``) and not pyroute2: every Linux host that can run the lab has it,
the lab needs no extra package, and each step is the command an operator would type to check
or undo it by hand (``ip netns list``, ``tc -n NS qdisc show``). The commands run as lists,
never through a shell.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "NAME_PREFIX",
    "Cluster",
    "LabUnavailable",
    "Node",
    "Rate",
    "lab_namespaces",
    "missing_requirements",
    "remove_namespace",
]

log = logging.getLogger(__name__)

NAME_PREFIX = "sgdlab-"
SUBNET = "198.18.0"  # RFC 2544 benchmark block; node i is SUBNET.<i+1>
MAX_NODES = 64
MIN_RATE_BPS = 1_000_000  # 1 Mbit/s: below this a step of any model takes minutes
MAX_RATE_BPS = 100_000_000_000  # 100 Gbit/s: beyond what a veth on 2 cores can carry anyway
TBF_LATENCY = "100ms"  # queue bound of tbf: packets wait at most this long, then drop
COMMAND_TIMEOUT_S = 20.0  # one ip/tc call; they take milliseconds
NETNS_ETC = Path("/etc/netns")  # ip netns exec binds NETNS_ETC/<namespace>/* over /etc/*
_UNITS = {"kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000}


class LabUnavailable(RuntimeError):
    """This machine cannot build the lab; the message says what is missing."""


@dataclass(frozen=True)
class Rate:
    """A link rate in bits per second, written as tc writes it (``100mbit``, ``1gbit``)."""

    bits_per_s: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)(kbit|mbit|gbit)", text.strip().lower())
        if match is None:
            raise ValueError(
                f"rate must be a number and a unit kbit, mbit or gbit (e.g. 100mbit); got {text!r}"
            )
        bps = round(float(match.group(1)) * _UNITS[match.group(2)])
        if not MIN_RATE_BPS <= bps <= MAX_RATE_BPS:
            raise ValueError(f"rate must be between 1mbit and 100gbit; got {text!r}")
        return cls(bps)

    @property
    def bytes_per_s(self) -> float:
        return self.bits_per_s / 8

    def tc(self) -> str:
        return f"{self.bits_per_s}bit"

    def burst_bytes(self) -> int:
        """tbf's bucket: 4 ms of traffic, at least 64 KiB (one GSO segment must fit)."""
        return max(64 * 1024, self.bits_per_s // 8 // 250)

    def __str__(self) -> str:
        for unit, scale in reversed(_UNITS.items()):
            if self.bits_per_s % scale == 0:
                return f"{self.bits_per_s // scale}{unit}"
        return f"{self.bits_per_s}bit"


@dataclass(frozen=True)
class Node:
    """One emulated machine: its namespace, the address its peers reach it at, its interface."""

    rank: int
    namespace: str
    address: str
    interface: str = "eth0"

    @property
    def prefix(self) -> list[str]:
        """The command prefix that runs a program on this node."""
        return ["ip", "netns", "exec", self.namespace]


def missing_requirements() -> list[str]:
    """What this machine lacks to build a lab (empty when it can); changes nothing."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces and tc need it; run as root)")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            missing.append(f"the {tool!r} command (package iproute2)")
    if not Path("/proc/self/ns/net").exists():
        missing.append("network namespaces (/proc/self/ns/net is absent)")
    return missing


def lab_namespaces() -> list[str]:
    """Every namespace of any lab on this machine (``ip netns list``)."""
    out = _run(["ip", "netns", "list"], check=True).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [name for name in names if name.startswith(NAME_PREFIX)]


def remove_namespace(name: str) -> None:
    """Delete one lab namespace and its hosts file (``sparsgd lab check --clean``)."""
    if not name.startswith(NAME_PREFIX):
        raise ValueError(f"namespace must be a lab's ({NAME_PREFIX}...); got {name!r}")
    shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
    _run(["ip", "netns", "delete", name], check=False)


class Cluster:
    """Build the lab on ``__enter__``, tear it down on ``__exit__`` (see the module docstring)."""

    def __init__(self, nodes: int, rate: Rate, lab_id: str | None = None) -> None:
        if not 1 <= nodes <= MAX_NODES:
            raise ValueError(f"nodes must be in [1, {MAX_NODES}]; got {nodes}")
        self.rate = rate
        self.lab_id = lab_id or f"{os.getpid()}-{secrets.token_hex(3)}"
        if not re.fullmatch(r"[A-Za-z0-9-]{1,24}", self.lab_id):
            raise ValueError(f"lab_id must be 1-24 letters, digits or '-'; got {self.lab_id!r}")
        base = f"{NAME_PREFIX}{self.lab_id}"
        self.hub = f"{base}-hub"
        self.nodes = [Node(i, f"{base}-n{i}", f"{SUBNET}.{i + 1}") for i in range(nodes)]
        self._created: list[str] = []
        self._etc: list[Path] = []

    def __enter__(self) -> Cluster:
        missing = missing_requirements()
        if missing:
            raise LabUnavailable("cannot build the network lab; missing: " + "; ".join(missing))
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        self._add_namespace(self.hub)
        self._ip(self.hub, "link", "add", "br0", "type", "bridge")
        self._ip(self.hub, "link", "set", "br0", "up")
        for node in self.nodes:
            self._add_namespace(node.namespace)
            port = f"p{node.rank}"
            # the veth is born with its ends in the two namespaces: none in the host's (3)
            _run(["ip", "-n", node.namespace, "link", "add", node.interface, "type", "veth",
                  "peer", "name", port, "netns", self.hub], check=True)  # fmt: skip
            self._ip(node.namespace, "addr", "add", f"{node.address}/24", "dev", node.interface)
            self._ip(node.namespace, "link", "set", node.interface, "up")
            self._ip(self.hub, "link", "set", port, "master", "br0")
            self._ip(self.hub, "link", "set", port, "up")
            self._shape(node.namespace, node.interface)  # (1)
            self._shape(self.hub, port)  # (2)
            self._write_hosts(node)  # (4)
        log.info("lab %s: %d nodes at %s", self.lab_id, len(self.nodes), self.rate)

    def tx_bytes(self) -> list[int]:
        """Bytes each node's interface has sent so far (the kernel's counter, on the wire)."""
        counters = []
        for node in self.nodes:
            path = f"/sys/class/net/{node.interface}/statistics/tx_bytes"
            counters.append(int(_run([*node.prefix, "cat", path], check=True).stdout))
        return counters

    def _write_hosts(self, node: Node) -> None:
        folder = NETNS_ETC / node.namespace
        folder.mkdir(parents=True, exist_ok=True)
        self._etc.append(folder)
        lines = ["127.0.0.1 localhost"]
        lines += [f"{peer.address} node{peer.rank}" for peer in self.nodes if peer != node]
        lines.append(f"{node.address} node{node.rank} {socket.gethostname()}")
        (folder / "hosts").write_text("\n".join(lines) + "\n")

    def _add_namespace(self, name: str) -> None:
        _run(["ip", "netns", "add", name], check=True)
        self._created.append(name)
        self._ip(name, "link", "set", "lo", "up")

    def _shape(self, namespace: str, device: str) -> None:
        rate = self.rate
        _run(["tc", "-n", namespace, "qdisc", "add", "dev", device, "root", "tbf",
              "rate", rate.tc(), "burst", str(rate.burst_bytes()), "latency", TBF_LATENCY],
             check=True)  # fmt: skip

    def _ip(self, namespace: str, *args: str) -> None:
        _run(["ip", "-n", namespace, *args], check=True)

    def close(self) -> None:
        """Delete every namespace and hosts file this lab created (5); safe to call twice."""
        while self._etc:
            shutil.rmtree(self._etc.pop(), ignore_errors=True)
        while self._created:
            name = self._created.pop()
            result = _run(["ip", "netns", "delete", name], check=False)
            if result.returncode != 0 and name in lab_namespaces():
                log.error("lab %s: could not delete namespace %s: %s", self.lab_id, name,
                          result.stderr.strip())  # fmt: skip


def _run(cmd: list[str], check: bool) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    if check and result.returncode != 0:
        raise LabUnavailable(f"{' '.join(cmd)!r} failed: {result.stderr.strip()}")
    return result
