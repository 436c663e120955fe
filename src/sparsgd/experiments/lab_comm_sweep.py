"""The collectives over shaped links for several P, measured against the calibrated model.

    python -m sparsgd.experiments.lab_comm_sweep --rate 100mbit --workers 2,4,8 \
        --numel 1000000 --density 0.001 --out docs/lab_results/comm-100mbit

For each P: a fresh lab, the alpha-beta calibration, then ``sparsgd bench comm``'s worker
(:func:`sparsgd.bench.lab_comm.measure_on_lab`). Writes ``P<n>.json`` per P (skipped when
present: the sweep resumes), ``comm.md`` (measured, bare gloo, model, select/comm/apply) and
``comm.png`` (measured and modelled milliseconds against P, one panel per collective).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

import matplotlib

from sparsgd.bench.lab_comm import measure_on_lab
from sparsgd.lab.cluster import Rate

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["sweep", "write_report"]


def sweep(
    rate: str, workers: list[int], numel: int, density: float, repeats: int, out: Path
) -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for p in workers:
        path = out / f"P{p}.json"
        if not path.exists():
            net, rows = measure_on_lab(p, Rate.parse(rate), numel, density, repeats, seed=0)
            record = {
                "workers": p, "rate": rate, "numel": numel, "density": density,
                "alpha_s": net.alpha, "beta_s_per_byte": net.beta,
                "load": os.getloadavg()[0], "rows": rows,
            }  # fmt: skip
            path.write_text(json.dumps(record, indent=1))
        runs.append(json.loads(path.read_text()))
    return runs


def _ms(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1f}"


def write_report(runs: list[dict[str, Any]], out: Path) -> str:
    lines = [
        "| P | collective | measured ms | select / comm / apply ms | bare gloo ms | model ms | "
        "bytes per node |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for r in run["rows"]:
            split = " / ".join(_ms(r[f"{part}_ms"]) for part in ("select", "comm", "apply"))
            lines.append(
                f"| {run['workers']} | {r['collective']} | {_ms(r['median_ms'])} | {split} | "
                f"{_ms(r.get('plain_ms', math.nan))} | {_ms(r['model_ms'])} | "
                f"{r['bytes_sent_per_rank']} |"
            )
    calib = ", ".join(
        f"P={run['workers']}: alpha {run['alpha_s'] * 1e6:.0f} us, "
        f"{8 / run['beta_s_per_byte'] / 1e6:.0f} Mbit/s (load {run['load']:.1f})"
        for run in runs
    )
    text = "\n".join(lines) + f"\n\nCalibrated: {calib}.\n"
    (out / "comm.md").write_text(text)
    _plot(runs, out / "comm.png")
    return text


def _plot(runs: list[dict[str, Any]], path: Path) -> None:
    names = [r["collective"] for r in runs[0]["rows"]]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), sharey=True)
    ps = [run["workers"] for run in runs]
    for ax, name in zip(axes, names, strict=True):
        rows = [next(r for r in run["rows"] if r["collective"] == name) for run in runs]
        ax.plot(ps, [r["median_ms"] for r in rows], marker="o", label="measured")
        ax.plot(ps, [r["model_ms"] for r in rows], marker="x", ls="--", label="alpha-beta model")
        ax.bar(ps, [r["select_ms"] for r in rows], width=0.6, alpha=0.3, label="select")
        ax.set_title(name)
        ax.set_xlabel("P (nodes)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("ms per call")
    axes[0].legend(fontsize=7)
    run = runs[0]
    fig.suptitle(f"links at {run['rate']}, d={run['numel']}, density {run['density']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", required=True)
    parser.add_argument("--workers", default="2,4,8")
    parser.add_argument("--numel", type=int, default=1_000_000)
    parser.add_argument("--density", type=float, default=0.001)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    workers = [int(p) for p in args.workers.split(",")]
    runs = sweep(args.rate, workers, args.numel, args.density, args.repeats, args.out)
    print(write_report(runs, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
