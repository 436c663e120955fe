"""Ranks on the lab's nodes: the one launcher's options for an emulated cluster.

    with Cluster(4, Rate.parse("100mbit")) as cluster:
        launch(fn, 4, args, lab_options(cluster, timeout_s=120))

Rank r runs on node r: its process starts under ``ip netns exec`` of that node's namespace
(:attr:`Node.prefix`), gloo speaks on the node's ``eth0``, and rank 0 hosts the rendezvous
store on node 0's address (the launcher's own namespace cannot reach the lab, by design).
"""

from __future__ import annotations

from sparsgd.comm.launch import LaunchOptions
from sparsgd.comm.launch_options import Host
from sparsgd.lab.cluster import Cluster

__all__ = ["STORE_PORT", "lab_options"]

STORE_PORT = 29500  # on node 0; the lab's namespaces are new, so nothing else holds it


def lab_options(cluster: Cluster, timeout_s: float = 300.0, threads: int = 1) -> LaunchOptions:
    """One rank per node of ``cluster``, rendezvous on node 0."""
    hosts = tuple(Host(prefix=tuple(n.prefix), interface=n.interface) for n in cluster.nodes)
    return LaunchOptions(
        timeout_s=timeout_s,
        address=cluster.nodes[0].address,
        hosts=hosts,
        threads=threads,
        store_port=STORE_PORT,
    )
