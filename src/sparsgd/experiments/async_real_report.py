"""Tables, figures and verdicts of ``async-real``.

Sources per method: ``real`` (the parameter server), ``sim-workers`` (simulated workers at the
same speeds) and ``sim-drawn`` (tau ~ Poisson(the real mean)). Verdicts:

- the simulator's prediction of staleness (a check of this project, not a paper claim): the
  same-speed simulation's mean tau within ``TAU_TOLERANCE`` (relative) of the real mean;
- Candela et al.: Top-k with memory on the real server ends at most ``ACCURACY_TOLERANCE``
  below vanilla ASGD (mean test accuracy after the fixed number of updates, before the
  workers flush their residuals; the accuracy after the flush is shown too).
"""

from __future__ import annotations

from typing import Any

from sparsgd.experiments.async_setup import accuracy_after, flushed_accuracy, staleness_of
from sparsgd.experiments.spec import Outcome, RunContext
from sparsgd.experiments.spread import mean_curve, mean_std, spread_text
from sparsgd.experiments.staleness_report import ACCURACY_TOLERANCE
from sparsgd.report.plots import Panel, Series, draw
from sparsgd.report.results import Figure, Finding, Table

__all__ = ["TAU_TOLERANCE", "async_real_outcome"]

# the real run's staleness moves with whatever else the shared cores do; a simulation of the
# same speeds "predicts" it when the means agree within a quarter
TAU_TOLERANCE = 0.25
SOURCES = ("real", "sim-workers", "sim-drawn")

Runs = dict[str, dict[str, list[dict[str, Any]]]]


def _mean_tau(runs: list[dict[str, Any]]) -> float | None:
    return mean_std([t["mean"] for r in runs if (t := staleness_of(r)) is not None])[0]


def _histogram(runs: list[dict[str, Any]]) -> dict[int, float]:
    """tau -> fraction of updates, pooled over seeds."""
    counts: dict[int, int] = {}
    for r in runs:
        if staleness_of(r) is None:
            continue
        for tau, n in staleness_of(r)["histogram"].items():
            counts[int(tau)] = counts.get(int(tau), 0) + int(n)
    total = sum(counts.values()) or 1
    return {tau: n / total for tau, n in sorted(counts.items())}


def _table(cfg, runs: Runs) -> Table:
    rows = []
    for method, by_source in runs.items():
        for source in SOURCES:
            rs = by_source[source]
            stats = [staleness_of(r) for r in rs if staleness_of(r) is not None]
            tau = [t["mean"] for t in stats]
            rows.append(
                [
                    method,
                    source,
                    spread_text(tau, 2),
                    max((t["max"] for t in stats), default=None),
                    spread_text([accuracy_after(r, cfg.steps) for r in rs]),
                    spread_text([flushed_accuracy(r) for r in rs]),
                    sum(r["diverged"] for r in rs),
                    mean_std([r["summary"]["wall_seconds"] for r in rs if r["summary"]])[0],
                ]
            )
    return Table(
        "async_real",
        f"{cfg.model} on {cfg.dataset}, {cfg.workers} workers slowed "
        f"{', '.join(f'{s:g}x' for s in cfg.slowdown)}, {cfg.steps} updates",
        [
            "method",
            "source",
            "mean tau",
            "largest tau",
            f"accuracy after {cfg.steps} updates",
            "after the final flush",
            "diverged",
            "wall s",
        ],
        rows,
        "real: the parameter server and worker processes; sim-workers: simulated workers at the "
        "same relative speeds (compute time calibrated from the real run); sim-drawn: one "
        "worker, tau ~ Poisson(real mean). Accuracy on the first "
        f"{cfg.test_limit} test samples.",
    )


def _figure(cfg, runs: Runs, ctx: RunContext) -> Figure:
    panels = []
    for method, by_source in runs.items():
        bars = []
        for source in SOURCES:
            hist = _histogram(by_source[source])
            bars.append(Series(source, list(hist), list(hist.values()), kind="bar"))
        panels.append(Panel(f"{method}: staleness histogram", "tau", "fraction of updates", bars))
        curves = []
        for source in SOURCES:
            xs, ys, std = mean_curve([(r["updates"], r["accuracy"]) for r in by_source[source]])
            curves.append(Series(source, xs, ys, std=std))
        panels.append(Panel(f"{method}: test accuracy", "updates", "test accuracy", curves))
    path = draw(ctx.figure_path("async_real"), panels)
    return Figure(
        path.name,
        "Real parameter server beside the simulator: staleness "
        "histograms and accuracy against updates",
    )


def _findings(cfg, runs: Runs) -> list[Finding]:
    parts, ok = [], []
    for method, by_source in runs.items():
        real = _mean_tau(by_source["real"])
        sim = _mean_tau(by_source["sim-workers"])
        ok.append(
            real is not None
            and sim is not None
            and abs(sim - real) <= TAU_TOLERANCE * max(real, 1e-12)
        )
        parts.append(f"{method}: real {real:.2f}, simulated {sim:.2f}")
    findings = [
        Finding(
            "(project check) the simulator at the same worker speeds predicts the real mean "
            "staleness",
            "agrees" if all(ok) else ("partly agrees" if any(ok) else "disagrees"),
            "; ".join(parts) + f"; rule: within {TAU_TOLERANCE:.0%} of the real mean",
        )
    ]
    finals = {
        m: mean_std([accuracy_after(r, cfg.steps) for r in s["real"]])[0] for m, s in runs.items()
    }
    if "vanilla" in finals and len(finals) > 1:
        sparse = {m: v for m, v in finals.items() if m != "vanilla"}
        held = [v >= finals["vanilla"] - ACCURACY_TOLERANCE for v in sparse.values()]
        findings.append(
            Finding(
                "Sparsified ASGD does at least as well as vanilla ASGD on a real parameter server "
                "with stale workers (Candela et al. 2019)",
                "agrees" if all(held) else ("partly agrees" if any(held) else "disagrees"),
                f"test accuracy after {cfg.steps} updates: vanilla {finals['vanilla']:.3f}, "
                + ", ".join(f"{m} {v:.3f}" for m, v in sparse.items())
                + f"; rule: at most {ACCURACY_TOLERANCE} below vanilla",
            )
        )
    return findings


def async_real_outcome(cfg, runs: Runs, ctx: RunContext) -> Outcome:
    data = {
        m: {
            s: [
                {
                    "updates": r["updates"],
                    "accuracy": r["accuracy"],
                    "staleness": staleness_of(r),
                    "diverged": r["diverged"],
                }
                for r in rs
            ]
            for s, rs in by.items()
        }
        for m, by in runs.items()
    }
    return Outcome(
        tables=[_table(cfg, runs)],
        figures=[_figure(cfg, runs, ctx)],
        findings=_findings(cfg, runs),
        data=data,
    )
