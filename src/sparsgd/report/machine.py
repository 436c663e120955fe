"""A description of the machine a run used, for ``results.json`` and the report.

Timings mean little without the machine: its CPU, how many cores the operating system
offers, how busy they were (the load average: processes waiting for a core, averaged over one
minute; above the core count means other work was competing with the run), and the software.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

__all__ = ["describe_machine", "machine_line"]

CPUINFO = Path("/proc/cpuinfo")


def _cpu_model() -> str:
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def describe_machine() -> dict[str, Any]:
    """CPU, cores, memory-free facts and software versions of this process's machine."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average_1min": _load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }


def machine_line(machine: dict[str, Any]) -> str:
    """One line for the report: ``2 cores of Intel Xeon ..., load 3.1, torch 2.13.0``."""
    if not machine:
        return "machine not recorded"
    load = machine.get("load_average_1min")
    busy = f", 1-minute load average {load} at start" if load is not None else ""
    gpu = ", CUDA GPU present" if machine.get("cuda") else ", no GPU"
    return (
        f"{machine.get('cores')} cores of {machine.get('cpu')}{busy}{gpu}; "
        f"{machine.get('platform')}, Python {machine.get('python')}, torch {machine.get('torch')}"
    )
