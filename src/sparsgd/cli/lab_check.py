"""``sparsgd lab check``: can this machine build the network lab? Changes nothing unless --clean.

Prints what is missing (root, the ``ip`` and ``tc`` commands of iproute2, network namespaces)
and the namespaces of labs on this machine. With ``--clean`` it deletes the namespaces of labs
whose process has ended (a lab's namespaces carry its process id: sgdlab-<pid>-<tag>-...).
"""

from __future__ import annotations

import argparse
import os

from sparsgd.lab.cluster import NAME_PREFIX, lab_namespaces, missing_requirements, remove_namespace

__all__ = ["HELP", "add_arguments", "run"]

HELP = "check that this machine can build the network lab; --clean removes labs of ended runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clean", action="store_true", help="delete the namespaces of labs whose process ended"
    )


def _owner_alive(namespace: str) -> bool:
    pid = namespace[len(NAME_PREFIX) :].split("-", 1)[0]
    return pid.isdigit() and os.path.exists(f"/proc/{pid}")


def run(args: argparse.Namespace) -> int:
    missing = missing_requirements()
    if missing:
        print("the network lab cannot run here; missing: " + "; ".join(missing))
        return 1
    print("the network lab can run here (root, iproute2, network namespaces)")
    names = lab_namespaces()
    stale = [n for n in names if not _owner_alive(n)]
    print(f"lab namespaces on this machine: {len(names)} ({len(stale)} of ended runs)")
    if args.clean:
        for name in stale:
            remove_namespace(name)
        print(f"deleted {len(stale)} namespaces of ended runs")
    return 0
