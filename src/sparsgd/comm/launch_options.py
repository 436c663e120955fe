"""Where the ranks of one launch run and how long they may take: Host, LaunchOptions.

    LaunchOptions()                                  # P local ranks, 127.0.0.1, gloo on ``lo``
    LaunchOptions(address="10.0.0.254", hosts=(      # a rank per network namespace
        Host(prefix=("ip", "netns", "exec", "ns0"), interface="veth0"), ...))

A :class:`Host` says how one rank's process is started (a command ``prefix`` run in front of
``python``: the prefix must end by running its arguments, as ``ip netns exec NAME`` and
``env`` do), which network interface its gloo listens on (``GLOO_SOCKET_IFNAME``) and any
environment variables of its own. Without ``hosts`` every rank is the local host: the loopback
interface when the rendezvous ``address`` is a loopback address, else the system's choice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LOCALHOST", "ChildJob", "Host", "LaunchOptions", "record_path"]

LOCALHOST = "127.0.0.1"
LOOPBACK_INTERFACE = "lo"


@dataclass(frozen=True)
class Host:
    """How one rank is started and which network it speaks on."""

    prefix: tuple[str, ...] = ()  # e.g. ("ip", "netns", "exec", "ns1")
    interface: str | None = None  # GLOO_SOCKET_IFNAME; None: the system's choice
    env: tuple[tuple[str, str], ...] = ()  # extra (NAME, value) pairs for this rank

    def __post_init__(self) -> None:
        if not all(isinstance(part, str) and part for part in self.prefix):
            raise ValueError(f"prefix must be non-empty strings; got {self.prefix!r}")
        if self.interface is not None and not self.interface:
            raise ValueError("interface must be a network interface name or None; got ''")
        names = [name for name, _ in self.env]
        if any(not name or "=" in name for name in names):
            raise ValueError(f"env names must be non-empty and without '='; got {names}")


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


@dataclass(frozen=True)
class LaunchOptions:
    """Settings of one launch (every field has a default for P local CPU ranks)."""

    device: str = "cpu"  # "cpu", or "cuda" (NCCL, GPU rank % device_count)
    timeout_s: float = 300.0  # the store and every collective: a lost peer fails, not blocks
    address: str = LOCALHOST  # the rendezvous store listens here, on a free port
    hosts: tuple[Host, ...] = ()  # one per rank; () : every rank local
    threads: int | None = None  # torch threads per rank; None: cpu_count // P, at least 1
    setup: Callable[[int], None] | None = None  # setup(rank) first in every rank
    required: tuple[int, ...] | None = None  # ranks whose failure ends the run; None: all
    linger_s: float = 10.0  # once the required ranks ended, the others get this long
    # None: the launcher hosts the store on a free port of ``address``. A port: rank 0 hosts
    # it on address:port, for ranks whose network the launcher's host cannot reach (the
    # namespaces of the network lab); ``address`` must then be rank 0's own address
    store_port: int | None = None

    def check(self, world: int) -> None:
        """Refuse settings that cannot work for ``world`` ranks, before anything starts."""
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0; got {self.timeout_s}")
        if self.linger_s < 0:
            raise ValueError(f"linger_s must be >= 0; got {self.linger_s}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 or None; got {self.threads}")
        if not self.address:
            raise ValueError("address must name the rendezvous host; got ''")
        if self.store_port is not None and not 0 < self.store_port < 65536:
            raise ValueError(f"store_port must be in [1, 65535] or None; got {self.store_port}")
        if self.hosts and len(self.hosts) != world:
            raise ValueError(f"hosts must hold one Host per rank ({world}); got {len(self.hosts)}")
        bad = [r for r in self.required or () if not 0 <= r < world]
        if bad:
            raise ValueError(f"required ranks must be in [0, {world}); got {bad}")

    def host(self, rank: int) -> Host:
        """The host of ``rank``: its own, or the local default."""
        if self.hosts:
            return self.hosts[rank]
        return Host(interface=LOOPBACK_INTERFACE if is_loopback(self.address) else None)

    def required_ranks(self, world: int) -> tuple[int, ...]:
        return tuple(range(world)) if self.required is None else tuple(sorted(set(self.required)))


@dataclass(frozen=True)
class ChildJob:
    """What every rank of one launch reads from the job file (sparsgd.comm.launch_child)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    world_size: int
    address: str  # the rendezvous store
    port: int
    device: str
    timeout_s: float
    threads: int
    setup: Callable[[int], None] | None
    records: str  # folder of the ranks' record files
    rank0_store: bool = False  # rank 0 hosts the store on address:port (LaunchOptions.store_port)


def record_path(records: str | Path, rank: int) -> Path:
    """Where rank ``rank`` writes its result or error record."""
    return Path(records) / f"rank-{rank}.pt"
