"""Tables and plots of a time-to-accuracy study on the lab (:mod:`sparsgd.experiments.lab_tta`).

    python -m sparsgd.experiments.lab_tta_report docs/lab_results/tta-100mbit --target 0.9

reads the study's result files and writes, into the same folder, ``tta.png`` (accuracy against
training seconds and against megabytes each node sent on the wire) and ``tta.md``: per
method the best accuracy, the first evaluation at or above the target (seconds, step), the
speed-up over dense S-SGD and over PowerSGD at that target (t_other / t_method), the wire
megabytes per node, and for sparsgd train rows the mean time split of a step.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["load_results", "table", "time_to", "write_report"]

BASELINES = ("dense", "powersgd")  # speed-ups are reported against these
PARTS = ("compute", "compress", "comm", "apply")


def load_results(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def time_to(result: dict[str, Any], target: float) -> tuple[float, int] | None:
    """(seconds, step) of the first evaluation at or above ``target``; None if never."""
    for point in result["points"]:
        if point["accuracy"] >= target:
            return point["seconds"], point["step"]
    return None


def _wire_mb(result: dict[str, Any]) -> float:
    wire = result["wire_bytes"]
    return sum(wire) / len(wire) / 1e6


def _split(folder: Path, method: str) -> str:
    log = folder / method / "log.jsonl"
    if not log.exists():
        return "(DDP loop: not split)"
    steps = [r for r in map(json.loads, log.read_text().splitlines()) if r["kind"] == "step"]
    means = {p: sum(r[f"time_{p}_s"] for r in steps) / len(steps) * 1e3 for p in PARTS}
    return " / ".join(f"{means[p]:.1f}" for p in PARTS)


def table(folder: Path, results: list[dict[str, Any]], target: float) -> str:
    reached = {r["method"]: time_to(r, target) for r in results}
    lines = [
        f"| method | best accuracy | time to {target:.0%} (s) | at step | vs dense | "
        "vs PowerSGD | wire MB per node | step ms: compute / compress / comm / apply |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        got = reached[r["method"]]
        best = max(p["accuracy"] for p in r["points"])
        cells = [r["method"], f"{best:.2%}"]
        cells += [f"{got[0]:.1f}", str(got[1])] if got else ["not reached", "-"]
        for base in BASELINES:
            other = reached.get(base)
            cells.append(f"{other[0] / got[0]:.2f}x" if got and other else "-")
        cells += [f"{_wire_mb(r):.1f}", _split(folder, r["method"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(results: list[dict[str, Any]], path: Path, target: float) -> None:
    fig, (by_time, by_bytes) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for r in results:
        acc = [p["accuracy"] for p in r["points"]]
        by_time.plot([p["seconds"] for p in r["points"]], acc, marker=".", label=r["method"])
        if r["points"] and "wire_bytes_per_rank" in r["points"][0]:
            mb = [sum(p["wire_bytes_per_rank"]) / len(p["wire_bytes_per_rank"]) / 1e6
                  for p in r["points"]]  # fmt: skip
            by_bytes.plot(mb, acc, marker=".", label=r["method"])
        else:  # sparsgd train rows: only the wire total of the whole run is known
            by_bytes.plot([_wire_mb(r)], [acc[-1]], marker="s", label=f"{r['method']} (end)")
    for ax, label in ((by_time, "training seconds"), (by_bytes, "MB sent per node (wire)")):
        ax.axhline(target, color="grey", lw=0.8, ls="--")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    by_bytes.set_xscale("log")
    by_time.set_ylabel("test accuracy")
    by_time.legend(fontsize=8)
    setup = results[0]["setup"]
    fig.suptitle(
        f"{setup['model']} on {setup['dataset']}, P={setup['workers']}, links at "
        f"{setup['rate']}, density {setup['density']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(folder: Path, target: float) -> str:
    results = load_results(folder)
    if not results:
        raise ValueError(f"no result files (*.json) in {folder}")
    if not 0 < target < 1 or math.isnan(target):
        raise ValueError(f"target must be an accuracy in (0, 1); got {target}")
    _plot(results, folder / "tta.png", target)
    text = table(folder, results, target)
    (folder / "tta.md").write_text(text + "\n")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--target", type=float, default=0.9, help="test accuracy (default 0.9)")
    args = parser.parse_args(argv)
    print(write_report(args.folder, args.target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
