"""The alpha-beta network clock: counted bytes become simulated seconds.

One message of n bytes costs (docs/algorithms.md section 5)

    t(n) = alpha + n * beta          # alpha: seconds per message, beta: seconds per byte

Presets:

    1gbe    alpha = 0.436 ms, beta = 9 ns/byte    the fit of Shi et al. (ICDCS 2019) for their
                                                  1 Gbps Ethernet cluster (8 ns/byte is the
                                                  line rate; the fit includes software cost)
    10gbe   alpha = 0.436 ms, beta = 0.9 ns/byte  our assumption, not a measurement: the same
                                                  per-message cost and a tenth of the per-byte
                                                  cost of the 1 GbE fit
    A,B     alpha = A seconds, beta = B seconds/byte, written out

The parameter server has one inbound and one outbound link; each carries one message at a
time, in the order messages become ready (full duplex: pushes and pulls do not wait for each
other):

    start     = max(ready, busy_until)
    busy_until = start + t(n)        # the message has arrived at busy_until
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["NETWORK_PRESETS", "Link", "NetworkModel", "parse_network"]


@dataclass(frozen=True)
class NetworkModel:
    """``t(n) = alpha + n * beta`` seconds for a message of n bytes."""

    alpha: float  # seconds per message
    beta: float  # seconds per byte
    name: str = "custom"

    def __post_init__(self) -> None:
        for field, value in (("alpha", self.alpha), ("beta", self.beta)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"network {field} must be a finite number >= 0; got {value!r}")

    def seconds(self, nbytes: int) -> float:
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0; got {nbytes}")
        return self.alpha + nbytes * self.beta


NETWORK_PRESETS: dict[str, NetworkModel] = {
    "1gbe": NetworkModel(alpha=0.436e-3, beta=9e-9, name="1gbe"),
    "10gbe": NetworkModel(alpha=0.436e-3, beta=0.9e-9, name="10gbe"),
}


def parse_network(text: str) -> NetworkModel:
    """``"1gbe"``, ``"10gbe"`` or ``"ALPHA,BETA"`` (seconds, seconds per byte)."""
    if text in NETWORK_PRESETS:
        return NETWORK_PRESETS[text]
    parts = text.split(",") if isinstance(text, str) else []
    if len(parts) != 2:
        raise ValueError(
            f"network must be one of {sorted(NETWORK_PRESETS)} or ALPHA,BETA "
            f"(seconds per message, seconds per byte); got {text!r}"
        )
    try:
        alpha, beta = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"network ALPHA,BETA must be two numbers; got {text!r}") from None
    return NetworkModel(alpha=alpha, beta=beta, name=text)


class Link:
    """One direction of the server's network port: messages pass one after the other."""

    def __init__(self, model: NetworkModel) -> None:
        self.model = model
        self.busy_until = 0.0  # simulated seconds
        self.messages = 0
        self.bytes = 0

    def send(self, ready: float, nbytes: int) -> float:
        """Queue a message of ``nbytes`` ready at ``ready``; returns its arrival time."""
        start = max(ready, self.busy_until)
        self.busy_until = start + self.model.seconds(nbytes)
        self.messages += 1
        self.bytes += nbytes
        return self.busy_until

    def state_dict(self) -> dict[str, Any]:
        return {"busy_until": self.busy_until, "messages": self.messages, "bytes": self.bytes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.busy_until = float(state["busy_until"])
        self.messages = int(state["messages"])
        self.bytes = int(state["bytes"])
