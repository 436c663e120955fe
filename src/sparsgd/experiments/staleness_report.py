"""Tables, figures and verdicts of the ``staleness`` experiment.

Per network: test accuracy after the fixed number of updates (the evaluation at that update,
before the workers flush their residuals) and updates to the target accuracy for every (staleness,
method) cell, mean ± std over seeds; a figure of final accuracy against mean staleness (both
sources) and of the accuracy curves at the largest drawn staleness.

Verdicts (Candela et al. 2019), over every network and every stale setting (S > 0), on the
mean final accuracy: Top-k with memory "does at least as well" as a rival when it is at most
``ACCURACY_TOLERANCE`` below it. Against vanilla ASGD, and against the best of the
counter-measures run in that setting: agrees if both Top-k densities do so in every stale
setting, partly agrees if they do in at least half, disagrees otherwise.
"""

from __future__ import annotations

from typing import Any

from sparsgd.experiments.async_setup import accuracy_after, staleness_of
from sparsgd.experiments.spec import Outcome, RunContext
from sparsgd.experiments.spread import first_reaching, mean_curve, mean_std, spread_text
from sparsgd.report.plots import Panel, Series, draw
from sparsgd.report.results import Figure, Finding, Table

__all__ = ["ACCURACY_TOLERANCE", "staleness_outcome"]

# short runs of a few hundred updates move by about a point of accuracy from seed to seed;
# differences below that are not read as one method beating another
ACCURACY_TOLERANCE = 0.01
UNINFORMATIVE = 2.0  # x chance: below this every compared method failed
SPARSE = ("topk-0.1", "topk-0.01")
COUNTER = ("staleness-aware", "dampening", "dc-asgd")

Cells = dict[tuple[str, str], list[dict[str, Any]]]


def _finals(runs: list[dict[str, Any]]) -> list[float]:
    """Accuracy after the run's updates, per seed (async_setup.accuracy_after)."""
    return [accuracy_after(r, r["steps"]) for r in runs]


def _final_text(runs: list[dict[str, Any]]) -> str:
    diverged = sum(r["diverged"] for r in runs)
    text = spread_text(_finals(runs))
    return f"{text}, {diverged} diverged" if diverged else text


def _mean_final(cells: Cells, setting: str, method: str) -> float | None:
    runs = cells.get((setting, method))
    return None if not runs else mean_std(_finals(runs))[0]


def _settings(cfg) -> list[str]:
    return list(dict.fromkeys(s.label for s, _ in cfg.grid()))


def _reach_text(runs: list[dict[str, Any]], target: float) -> str:
    hits = [first_reaching((r["updates"], r["accuracy"]), target) for r in runs]
    reached = [h for h in hits if h is not None]
    if len(reached) < len(hits):
        return f"{len(reached)}/{len(hits)} reached" + (
            f", {spread_text(reached, 0)}" if reached else ""
        )
    return spread_text(reached, 0)


def _tables(cfg, task, cells: Cells) -> list[Table]:
    settings = _settings(cfg)
    methods = list(dict.fromkeys(m for _, m in cfg.grid()))
    final_rows, reach_rows = [], []
    for m in methods:
        final_rows.append(
            [m] + [_final_text(cells[(s, m)]) if (s, m) in cells else "-" for s in settings]
        )
        reach_rows.append(
            [m]
            + [
                _reach_text(cells[(s, m)], task.target) if (s, m) in cells else "-"
                for s in settings
            ]
        )
    taus = []
    for setting in settings:
        summaries = [
            staleness_of(r)
            for (s, _), rs in cells.items()
            if s == setting
            for r in rs
            if staleness_of(r) is not None
        ]
        taus.append(
            [
                setting,
                mean_std([t["mean"] for t in summaries])[0],
                max((t["max"] for t in summaries), default=None),
            ]
        )
    return [
        Table(
            f"tau_{task.model}",
            f"{task.label}: staleness the server measured",
            ["setting", "mean tau (over runs)", "largest tau"],
            taus,
        ),
        Table(
            f"final_{task.model}",
            f"{task.label}: test accuracy after {task.steps} updates",
            ["method", *settings],
            final_rows,
            "Columns: staleness source and mean (drawn: tau ~ Poisson(S), one worker; "
            "workers: S + 1 simulated workers, exponential compute times). Mean ± std over "
            f"seeds; accuracy on the first {cfg.test_limit} test samples. A run that diverged "
            "(its model or residual stopped being finite) counts with chance accuracy, the "
            "score of a model that predicts one class.",
        ),
        Table(
            f"reach_{task.model}",
            f"{task.label}: updates to reach {task.target:.0%} test accuracy",
            ["method", *settings],
            reach_rows,
            f"Resolution: one evaluation every {max(1, task.steps // cfg.evals)} updates.",
        ),
    ]


def _figure(cfg, task, cells: Cells, ctx: RunContext) -> Figure:
    panels = []
    for source, means in (("drawn", cfg.drawn_means), ("workers", cfg.worker_means)):
        series = []
        methods = cfg.drawn_methods if source == "drawn" else cfg.worker_methods
        for m in methods:
            labels = [(s, "sync" if s == 0 else f"{source}-{s}") for s in means]
            stats = [
                (s, mean_std(_finals(cells[(lab, m)]))) for s, lab in labels if (lab, m) in cells
            ]
            series.append(
                Series(
                    m,
                    [s for s, _ in stats],
                    [v[0] for _, v in stats],
                    std=[v[1] or 0.0 for _, v in stats],
                )
            )
        panels.append(
            Panel(
                f"{task.label}: staleness {source}",
                "mean staleness",
                "test accuracy after the updates",
                series,
            )
        )
    worst = f"drawn-{max(cfg.drawn_means)}"
    curves = []
    for m in cfg.drawn_methods:
        if (worst, m) in cells:
            xs, ys, std = mean_curve([(r["updates"], r["accuracy"]) for r in cells[(worst, m)]])
            curves.append(Series(m, xs, ys, std=std))
    panels.append(Panel(f"{task.label}: accuracy, {worst}", "updates", "test accuracy", curves))
    path = draw(ctx.figure_path(f"staleness_{task.model}"), panels, ncols=3)
    return Figure(
        path.name,
        f"{task.label}: final accuracy against mean staleness, and "
        f"accuracy curves at {worst} (± std over seeds)",
    )


def _chance(cells: Cells) -> float:
    return next(iter(cells.values()))[0]["chance"]


def _compare(cfg, runs: dict[str, Cells], rival) -> tuple[int, int, list[str], int]:
    """(cells where both Top-k densities hold up, cells compared, details, cells left out).

    A cell where the rival and both Top-k runs all stay below ``UNINFORMATIVE`` x chance is
    left out: every method failed there, and the differences are noise.
    """
    held, total, details, left_out = 0, 0, [], 0
    for model, cells in runs.items():
        floor = UNINFORMATIVE * _chance(cells)
        for setting in _settings(cfg):
            if setting == "sync":
                continue
            other = rival(cells, setting)
            sparse = [_mean_final(cells, setting, m) for m in SPARSE]
            if other is None or any(v is None for v in sparse):
                continue
            if max(other, *sparse) < floor:
                left_out += 1
                continue
            total += 1
            ok = all(v >= other - ACCURACY_TOLERANCE for v in sparse)
            held += ok
            details.append(
                f"{model} {setting}: topk {'/'.join(f'{v:.3f}' for v in sparse)} vs {other:.3f}"
            )
    return held, total, details, left_out


def _verdict(held: int, total: int) -> str:
    if total == 0:
        return "inconclusive"
    if held == total:
        return "agrees"
    return "partly agrees" if held >= total / 2 else "disagrees"


def _findings(cfg, runs: dict[str, Cells]) -> list[Finding]:
    def vanilla(cells, s):
        return _mean_final(cells, s, "vanilla")

    def best_counter(cells, s):
        values = [v for m in COUNTER if (v := _mean_final(cells, s, m)) is not None]
        return max(values) if values else None

    findings = []
    for rival, what in ((vanilla, "vanilla ASGD"), (best_counter, "the best counter-measure")):
        held, total, details, left_out = _compare(cfg, runs, rival)
        findings.append(
            Finding(
                "Sparsified ASGD (Top-k 0.1 and 0.01, with memory) does at least as well as "
                f"{what} under staleness (Candela et al. 2019)",
                _verdict(held, total),
                f"held in {held} of {total} stale (network, setting) cells: "
                + "; ".join(details)
                + f"; rule: mean accuracy after the updates at most {ACCURACY_TOLERANCE} below, "
                f"both densities; {left_out} cells where every one of them stayed below "
                f"{UNINFORMATIVE:g}x chance are left out",
            )
        )
    return findings


def staleness_outcome(cfg, runs: dict[str, Cells], ctx: RunContext) -> Outcome:
    tables, figures = [], []
    for task in cfg.tasks:
        tables += _tables(cfg, task, runs[task.model])
        figures.append(_figure(cfg, task, runs[task.model], ctx))
    data = {
        model: {
            f"{s}|{m}": [
                {
                    "updates": r["updates"],
                    "accuracy": r["accuracy"],
                    "staleness": staleness_of(r),
                    "diverged": r["diverged"],
                }
                for r in rs
            ]
            for (s, m), rs in cells.items()
        }
        for model, cells in runs.items()
    }
    return Outcome(tables=tables, figures=figures, findings=_findings(cfg, runs), data=data)
