"""Tables, figures and findings of the ``staleness`` study.

Every number is read at lr*(S, method), the grid value chosen on the held-out split
(:mod:`~sparsgd.experiments.staleness_verdicts` step (1)). Over the n seeds of a cell, with
sample standard deviation s:

    (1) interval  mean -/+ t_{0.975, n-1} s / sqrt(n)        (95% Student t; none for n = 1)

Tables: held-out accuracy over the whole lr grid (the evidence of each choice), test accuracy
at lr* against S, the staleness the server measured, and per stale cell the verdicts on both
versions of the claim. Figures (small multiples): test accuracy against S, one panel per
method group, with the intervals (1) as bands; test accuracy against updates, one panel per
S, mean ± std over seeds. A smoke run gives every claim "inconclusive": it is not a result.
"""

from __future__ import annotations

import math
from typing import Any

from scipy import stats as _scipy_stats

from sparsgd.experiments.cells import CellRate
from sparsgd.experiments.spec import Outcome, RunContext
from sparsgd.experiments.spread import mean_curve
from sparsgd.experiments.staleness_verdicts import (
    CHANCE_FACTOR,
    COUNTERS,
    MARGIN,
    SPARSE,
    VANILLA,
    CellVerdicts,
    Runs,
    cell_verdicts,
    choose_lr,
    mean_of,
)
from sparsgd.report.plots import Panel, Series, draw
from sparsgd.report.results import Figure, Finding, Table
from sparsgd.report.stats import combine

__all__ = ["ACCURACY_TOLERANCE", "GROUPS", "interval", "staleness_outcome"]

ACCURACY_TOLERANCE = MARGIN  # also the async-real study's tolerance
GROUPS = (  # panels of the accuracy-against-staleness figure
    ("Top-k, density 0.01", (VANILLA, "topk-0.01", "topk-0.01-nomem")),
    ("random-k, density 0.01", (VANILLA, "randk-0.01", "randk-0.01-nomem")),
    ("counter-measures", (VANILLA, SPARSE, *COUNTERS)),
)


def _reduced(cfg, runs: Runs, seeds: int) -> str:
    """What the study reduced against the paper, from its config."""
    epochs = next(iter(runs.values()))[0]["epochs"]
    means = ", ".join(str(s) for s in cfg.means)
    return (
        "the paper's experimental setup could not be read here (docs/experiments.md); this "
        f"study runs {cfg.label} only (LeNet-5 dropped for cost), staleness drawn as tau ~ "
        f"Poisson(S) for one simulated worker with S = {means} (simulated workers with random "
        f"compute times dropped), density 0.01 only, batch {cfg.batch_size} and {cfg.steps} "
        f"updates ({epochs:.2f} epochs) per run, a shared grid of {len(cfg.lrs)} learning "
        f"rates, {seeds} seeds"
    )


def interval(values: list[float]) -> tuple[float, float | None]:
    """(1): (mean, half-width of the 95% t interval; None for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(_scipy_stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)


def _methods(runs: Runs) -> list[str]:
    return list(dict.fromkeys(m for _, m, _ in runs))


def _means(runs: Runs) -> list[int]:
    return sorted({s for s, _, _ in runs})


def _chosen(runs: Runs, s: int, m: str, lrs) -> list[dict[str, Any]] | None:
    lr = choose_lr(runs, s, m, lrs)
    return None if lr is None else runs[(s, m, lr)]


def _acc_text(cell: list[dict[str, Any]]) -> str:
    mean, half = interval([r["test_accuracy"] for r in cell])
    text = f"{mean:.3f}" if half is None else f"{mean:.3f} ± {half:.3f}"
    diverged = sum(r["diverged"] for r in cell)
    return text + (f" ({diverged} diverged)" if diverged else "")


def _verdict_text(verdict, smoke: bool) -> str:
    return "smoke run: no verdict" if smoke else f"{verdict.word}: {verdict.text}"


def _tables(cfg, runs: Runs, verdicts: list[CellVerdicts], smoke: bool) -> list[Table]:
    means, methods = _means(runs), _methods(runs)
    grid_rows, test_rows = [], []
    for m in methods:
        for lr in cfg.lrs:
            row = [m, f"{lr:g}"]
            for s in means:
                cell = runs.get((s, m, lr))
                mark = " *" if cell and choose_lr(runs, s, m, cfg.lrs) == lr else ""
                row.append(f"{mean_of(cell, 'valid_accuracy'):.3f}{mark}" if cell else "-")
            grid_rows.append(row)
        chosen = [(s, choose_lr(runs, s, m, cfg.lrs)) for s in means]
        test_rows.append(
            [m]
            + ["-" if lr is None else f"{_acc_text(runs[(s, m, lr)])} @ {lr:g}" for s, lr in chosen]
        )
    taus = []
    for s in means:
        cells = [r for (s2, _, _), rs in runs.items() if s2 == s for r in rs]
        taus.append(
            [s, mean_of(cells, "tau_mean"), max(r["tau_max"] for r in cells), cells[0]["epochs"]]
        )
    columns = [f"S={s}" for s in means]
    verdict_rows = [
        [
            v.s,
            f"{v.vanilla_lr:g}",
            f"{v.sparse_lr:g}",
            f"{v.counter[0]} @ {v.counter[1]:g}",
            _verdict_text(v.later, smoke),
            _verdict_text(v.v1, smoke),
        ]
        for v in verdicts
    ]
    return [
        Table(
            "valid_grid",
            f"{cfg.label}: held-out accuracy over the lr grid (mean over seeds; * = lr*)",
            ["method", "lr", *columns],
            grid_rows,
            f"Accuracy on the {cfg.valid_size} held-out training samples after the run's "
            "updates. lr* is the grid value with the highest mean here (ties: the smaller); "
            "the test set is never used to choose.",
        ),
        Table(
            "test_accuracy",
            f"{cfg.label}: test accuracy at lr* (mean ± 95% t half-width over seeds @ lr*)",
            ["method", *columns],
            test_rows,
            "Test accuracy after the run's updates, before the worker flushes its residual. "
            "A diverged run scores chance. At S = 0 the counter-measures equal vanilla (tau = "
            "0) and are not run.",
        ),
        Table(
            "staleness",
            f"{cfg.label}: staleness the server applied, and the budget",
            ["S", "mean tau (over runs)", "largest tau", "epochs per run"],
            taus,
        ),
        Table(
            "verdicts",
            f"{cfg.label}: verdicts per stale cell (Top-k 0.01 with memory)",
            ["S", "vanilla lr*", "Top-k lr*", "best counter-measure", "later version", "v1"],
            verdict_rows,
            "Paired by seed over test accuracy at each method's own lr*; the best "
            "counter-measure is the one with the highest held-out accuracy at its own lr*.",
        ),
    ]


def _test_curve(run: dict[str, Any]) -> tuple[list[float], list[float]]:
    return run["curve"]["updates"], run["curve"]["test"]


def _figures(cfg, runs: Runs, verdicts: list[CellVerdicts], ctx: RunContext) -> list[Figure]:
    means = _means(runs)
    chance = next(iter(runs.values()))[0]["chance"]
    panels = []
    for title, group in GROUPS:
        series = []
        for m in group:  # at S = 0 a counter-measure is vanilla: vanilla's runs stand in
            points = [
                (s, _chosen(runs, s, VANILLA if s == 0 and m in COUNTERS else m, cfg.lrs))
                for s in means
            ]
            stats = [(s, interval([r["test_accuracy"] for r in c])) for s, c in points if c]
            series.append(
                Series(
                    m,
                    [s for s, _ in stats],
                    [mean for _, (mean, _) in stats],
                    std=[half or 0.0 for _, (_, half) in stats],
                )
            )
        ylabel = "test accuracy at lr*"
        panels.append(Panel(title, "mean staleness S", ylabel, series, hline=(chance, "chance")))
    path = draw(ctx.figure_path("staleness_accuracy"), panels, ncols=3)
    counters = {v.s: v.counter[0] for v in verdicts}
    curves = []
    for s in means:
        series = []
        for m in (VANILLA, SPARSE, "randk-0.01", counters.get(s)):
            cell = None if m is None else _chosen(runs, s, m, cfg.lrs)
            if cell:
                xs, ys, std = mean_curve([_test_curve(r) for r in cell])
                series.append(Series(m, xs, ys, std=std))
        curves.append(Panel(f"S = {s}", "updates", "test accuracy at lr*", series))
    curve_path = draw(ctx.figure_path("staleness_curves"), curves, ncols=len(curves))
    return [
        Figure(
            path.name,
            f"{cfg.label}: test accuracy against mean staleness, each method at its lr* (bands: "
            "95% t interval over seeds; at S = 0 the counter-measures are vanilla)",
        ),
        Figure(
            curve_path.name,
            f"{cfg.label}: test accuracy against updates at lr*, vanilla, Top-k and random-k "
            "with memory and the best counter-measure of each S (bands: ± std over seeds)",
        ),
    ]


LATER_CLAIM = (
    "Top-k with memory (density 0.01) is not worse than vanilla ASGD by more than "
    f"{MARGIN:g} test accuracy under staleness (Candela et al., later version 'Convergence "
    "Analysis of Sparsified Asynchronous SGD': effects 'negligible')"
)
V1_CLAIM = (
    "Top-k with memory (density 0.01) is better than vanilla ASGD and than the best "
    "counter-measure under staleness (Candela et al. 2019, v1: 'consistently improves over "
    "vanilla SGD and current alternatives')"
)
RULE = (
    "per stale cell S, paired by seed, each method at its lr* chosen on held-out data: "
    "sparsgd.report.stats.judge on test accuracy ({rule}); cells where every compared run "
    f"stayed at or below {CHANCE_FACTOR:g}x chance are inconclusive; over cells: combine "
    "(agrees if all agree, disagrees if none agrees and one disagrees, partly agrees otherwise)"
)


def _findings(verdicts: list[CellVerdicts], smoke: bool, reduced: str) -> list[Finding]:
    later_rule = RULE.format(rule=f"not worse than vanilla by more than {MARGIN:g}")
    v1_rule = RULE.format(
        rule="better than vanilla and better than the best counter-measure (by held-out "
        "accuracy at its lr*); a cell agrees if both agree, disagrees if either disagrees"
    )
    findings = []
    for claim, rule, pick in (
        (LATER_CLAIM, later_rule, lambda v: v.later),
        (V1_CLAIM, v1_rule, lambda v: v.v1),
    ):
        evidence = "; ".join(
            f"S={v.s}: {pick(v).word} ({pick(v).text}; lr* vanilla {v.vanilla_lr:g}, Top-k "
            f"{v.sparse_lr:g}, {v.counter[0]} {v.counter[1]:g})"
            for v in verdicts
        )
        if smoke:
            findings.append(
                Finding(claim, "inconclusive", "smoke run: not a result, no verdict", rule)
            )
            continue
        word = combine([pick(v) for v in verdicts])
        findings.append(Finding(claim, word, evidence or "no stale cell ran", rule, reduced))
    return findings


def _rate_note(rate: CellRate | None) -> list[str]:
    if rate is None:
        return []
    per_hour = "no run" if rate.per_hour is None else f"{rate.per_hour:.0f} runs per hour"
    return [
        f"Cells (out/cells/, one JSON per run): {rate.ran} run by this invocation in "
        f"{rate.seconds / 60:.1f} min with {rate.workers} process(es) ({per_hour}), "
        f"{rate.reused} read back from earlier invocations."
    ]


def staleness_outcome(cfg, runs: Runs, ctx: RunContext, rate: CellRate | None) -> Outcome:
    classes = round(1.0 / next(iter(runs.values()))[0]["chance"])
    verdicts = [
        v for s in _means(runs) if s > 0 and (v := cell_verdicts(runs, s, cfg.lrs, classes))
    ]
    data = {
        "lr_star": {
            f"{s}|{m}": choose_lr(runs, s, m, cfg.lrs) for s in _means(runs) for m in _methods(runs)
        },
        "best_counter": {str(v.s): list(v.counter) for v in verdicts},
    }
    return Outcome(
        tables=_tables(cfg, runs, verdicts, ctx.smoke),
        figures=_figures(cfg, runs, verdicts, ctx),
        findings=_findings(verdicts, ctx.smoke, _reduced(cfg, runs, len(ctx.seeds))),
        notes=_rate_note(rate),
        data=data,
    )
