"""``comm-scaling``'s lab half: the network lab's measured collectives beside the model.

The network lab (docs/lab.md) measured the collectives on P nodes joined by links shaped to
a rate (``python -m sparsgd.experiments.lab_comm_sweep``); each ``P<n>.json`` of its folder
holds the lab's calibrated alpha and beta and, per collective, the median ms of a whole call
and of its communication part. For the same P, d, rho and link:

    (1) model ms = aggregation_seconds(collective, P, d, rho, NetworkModel(alpha, beta)), the
        alpha-beta cost (sparsgd.bench.cost_model) with that lab's calibrated alpha and beta,
        recomputed here rather than read back from the file
    (2) measured / model, for the whole call and for its communication part (the model has no
        term for top-k selection, for applying the result, or for waiting on a busy core)
    (3) verdict per (P, collective): agrees if |comm / model - 1| <= LAB_TOLERANCE (30 %),
        else disagrees; the cells combine with :func:`sparsgd.report.stats.combine`

The files are read, nothing is measured: the lab needs root and takes minutes per P.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparsgd.bench.cost_model import MODELLED, aggregation_seconds
from sparsgd.report.results import Finding, Table
from sparsgd.report.stats import Verdict, combine
from sparsgd.sim.network_clock import NetworkModel

__all__ = ["LAB_RULE", "LAB_TOLERANCE", "lab_comparison", "load_lab_runs", "resolve_lab_dir"]

LAB_TOLERANCE = 0.30  # (3) the same "within 30 %" as the efficiency verdicts
LAB_RULE = (
    f"per (P, collective): agrees if |measured comm / model - 1| <= {LAB_TOLERANCE:.0%}, "
    "else disagrees; combined: agrees if all agree, partly if some do, disagrees if none does"
)
LAB_COLUMNS = [
    *("P", "collective", "measured ms", "comm ms", "model ms"),
    *("measured / model", "comm / model", "verdict"),
]
REPO_ROOT = Path(__file__).resolve().parents[3]  # src/sparsgd/experiments/ -> the checkout


def resolve_lab_dir(lab_dir: str) -> Path:
    """``lab_dir`` as given when it exists there, else relative to the source checkout."""
    path = Path(lab_dir)
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path


def load_lab_runs(folder: Path) -> list[dict[str, Any]]:
    """Every ``P<n>.json`` of ``folder``, by P; ValueError naming a file that lacks a field."""
    runs = []
    for path in sorted(folder.glob("P*.json")):
        run = json.loads(path.read_text())
        for key in ("workers", "rate", "numel", "density", "alpha_s", "beta_s_per_byte", "rows"):
            if key not in run:
                raise ValueError(f"{path} has no {key!r}: not a lab_comm_sweep record")
        runs.append(run)
    return sorted(runs, key=lambda run: run["workers"])


def _cell(run: dict[str, Any], row: dict[str, Any]) -> tuple[list[Any], Verdict]:
    """(1)-(3) for one collective of one lab run."""
    net = NetworkModel(alpha=run["alpha_s"], beta=run["beta_s_per_byte"])
    p, name = run["workers"], row["collective"]
    model_ms = aggregation_seconds(name, p, run["numel"], run["density"], net) * 1e3  # (1)
    whole, comm = row["median_ms"] / model_ms, row["comm_ms"] / model_ms  # (2)
    word = "agrees" if abs(comm - 1) <= LAB_TOLERANCE else "disagrees"  # (3)
    verdict = Verdict(word, None, f"P={p} {name}: comm {comm:.2f}x model")
    cells = [p, name, row["median_ms"], row["comm_ms"], model_ms, whole, comm, word]
    return cells, verdict


def lab_comparison(folder: Path) -> tuple[Table, Finding, dict[str, Any]] | None:
    """The table, the finding and the data; None when ``folder`` holds no lab record."""
    runs = load_lab_runs(folder) if folder.is_dir() else []
    if not runs:
        return None
    rows, verdicts = [], []
    for run in runs:
        for row in run["rows"]:
            if row["collective"] in MODELLED:
                cells, verdict = _cell(run, row)
                rows.append(cells)
                verdicts.append(verdict)
    first = runs[0]
    calib = ", ".join(
        f"P={r['workers']}: alpha {r['alpha_s'] * 1e6:.0f} us, "
        f"{8 / r['beta_s_per_byte'] / 1e6:.0f} Mbit/s (load {r.get('load', float('nan')):.1f})"
        for r in runs
    )
    what = f"{first['rate']} links, d = {first['numel']}, rho = {first['density']}"
    table = Table(
        "lab",
        f"Network lab, measured against the alpha-beta model ({what})",
        LAB_COLUMNS,
        rows,
        f"Read from {folder.name}/P*.json (docs/lab.md). Measured: median over repeats of the "
        "slowest rank, whole call (selection, communication, applying) and its communication "
        f"part. Model: alpha-beta cost with the lab's calibrated alpha and beta ({calib}). "
        f"Rule: {LAB_RULE}.",
    )
    finding = Finding(
        "The alpha-beta cost of the three aggregations (ICDCS 2019) predicts their time",
        combine(verdicts),
        f"network lab at {first['rate']}: " + "; ".join(v.text for v in verdicts),
        rule=LAB_RULE,
        reduced="P up to 8 emulated nodes on one machine's cores; no network latency "
        "emulated (alpha is this machine's software cost); read from a committed lab run",
    )
    data = {"folder": str(folder), "rows": rows, "calibration": calib}
    return table, finding, data
