"""One cell of the ``lab-tta`` study: one method at one link rate with one seed, on a fresh lab.

    spec   = cell_spec(setup, "gtopk")          # JSON-able: the setup (no data folder), method
    name   = cell_name(spec)                    # "100mbit-gtopk-s0"
    result = run_lab_cell(spec, data_dir=...)   # the curve, small enough to commit

A cell runs :func:`sparsgd.experiments.lab_tta.measure` in a temporary folder (sparsgd
train's run folder and checkpoints are deleted with it) and keeps, at each evaluation:

    step, seconds      the step, the training seconds measured up to it on the lab
    wire_mb            megabytes on the wire per node (mean over nodes) up to it
    accuracy           test accuracy of the model at that step

and for the run: the wire megabytes of every node, the mean time split of a step in ms
(sparsgd train rows; None for the DDP loop) and the 1-minute load average before and after
(the lab's times are wall-clock on shared cores). ``CELL_VERSION`` is part of the spec, so a
change of what a cell measures runs every cell again (experiments.cells).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from sparsgd.experiments.lab_tta import DDP_METHODS, TRAIN_METHODS, Setup, measure

__all__ = ["CELL_VERSION", "cell_name", "cell_spec", "run_lab_cell"]

CELL_VERSION = 1
DIGITS = 4  # decimals kept of seconds, megabytes, accuracies and ms in a cell file


def cell_spec(setup: Setup, method: str) -> dict[str, Any]:
    """The setup without its data folder (a machine's path), the method, ``CELL_VERSION``."""
    if method not in TRAIN_METHODS + DDP_METHODS:
        raise ValueError(f"method must be one of {TRAIN_METHODS + DDP_METHODS}; got {method!r}")
    values = {k: v for k, v in asdict(setup).items() if k != "data_dir"}
    return {**values, "method": method, "version": CELL_VERSION}


def cell_name(spec: dict[str, Any]) -> str:
    return f"{spec['rate']}-{spec['method']}-s{spec['seed']}"


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def run_lab_cell(spec: dict[str, Any], data_dir: str | None = None) -> dict[str, Any]:
    """Measure the cell (module docstring); module-level so that a CellStore can call it."""
    known = {f.name for f in fields(Setup)}
    setup = Setup(**{k: v for k, v in spec.items() if k in known}, data_dir=data_dir)
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="sparsgd-lab-tta-") as tmp:
        raw = measure(setup, spec["method"], Path(tmp))
    points = raw["points"]
    split = raw["time_split_ms"]
    return {
        "method": spec["method"],
        "curve": {
            "step": [p["step"] for p in points],
            "seconds": [round(p["seconds"], DIGITS) for p in points],
            "wire_mb": [
                round(sum(p["wire_bytes_per_rank"]) / len(p["wire_bytes_per_rank"]) / 1e6, DIGITS)
                for p in points
            ],
            "accuracy": [round(p["accuracy"], DIGITS) for p in points],
        },
        "wire_mb_per_node": [round(b / 1e6, DIGITS) for b in raw["wire_bytes"]],
        "time_split_ms": None if split is None else {k: round(v, DIGITS) for k, v in split.items()},
        "load": [load_before, _load()],
    }
