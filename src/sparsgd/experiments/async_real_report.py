"""Tables, figures and verdicts of ``async-real``.

Sources per method: ``real`` (the parameter server), ``sim-workers`` (simulated workers at the
same speeds) and ``sim-drawn`` (tau ~ Poisson(the real mean)); each a list of cell results in
seed order. A run's score is its test accuracy after the fixed number of updates, before the
workers flush their residuals (chance for a run that diverged). Verdicts:

    (1) Candela et al., "sparsified ASGD does at least as well as vanilla ASGD": per source,
        judge(sparse scores, vanilla scores, rule "not_worse", margin MARGIN, chance level
        CHANCE_FACTOR / classes), paired by seed (:func:`sparsgd.report.stats.judge`); the
        finding is the real source's (the claim is about a real server), the simulated
        sources are shown beside it
    (2) a check of this project, not a paper claim: the same-speed simulation predicts the
        real mean staleness if, for every method, its mean tau over seeds is within
        TAU_TOLERANCE (relative) of the real one; agrees if every method's is, disagrees if
        none is, partly agrees otherwise

MARGIN and CHANCE_FACTOR are the staleness study's (:mod:`~.staleness_verdicts`). A smoke run
judges nothing: its findings are inconclusive and its verdict cells say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sparsgd.experiments.async_real_cell import SOURCES
from sparsgd.experiments.async_setup import flushed_accuracy, staleness_of
from sparsgd.experiments.cells import CellRate
from sparsgd.experiments.spec import Outcome, RunContext
from sparsgd.experiments.spread import mean_curve, mean_std, spread_text
from sparsgd.experiments.staleness_verdicts import CHANCE_FACTOR, MARGIN
from sparsgd.experiments.sync_study import SMOKE_EVIDENCE
from sparsgd.report.plots import Panel, Series, draw
from sparsgd.report.results import Figure, Finding, Table
from sparsgd.report.stats import Verdict, combine, judge

__all__ = ["TAU_RULE", "TAU_TOLERANCE", "async_real_outcome", "judge_sources", "tau_check"]

# the real run's staleness moves with whatever else the shared cores do; a simulation of the
# same speeds "predicts" it when the means agree within a quarter
TAU_TOLERANCE = 0.25
TAU_RULE = (
    f"per method, the same-speed simulation's mean tau (over seeds) within {TAU_TOLERANCE:.0%} "
    "of the real mean tau; agrees if every method's is, disagrees if none is, else partly agrees"
)
VANILLA = "vanilla"
CLAIM = (
    "Sparsified ASGD does at least as well as vanilla ASGD on a real parameter server with "
    "stale workers (Candela et al. 2019)"
)
CLAIM_RULE = (
    f"paired by seed, score = test accuracy after the fixed number of updates (chance for a "
    f"run that diverged), 95% Student-t interval of the difference; not worse if its low end "
    f">= -{MARGIN:g}, worse if its high end < -{MARGIN:g}, else inconclusive; all runs at or "
    f"below {CHANCE_FACTOR:g}x chance inconclusive; the finding is the real server's"
)

Runs = dict[str, dict[str, list[dict[str, Any]]]]


def _mean_tau(runs: list[dict[str, Any]]) -> float | None:
    return mean_std([t["mean"] for r in runs if (t := staleness_of(r)) is not None])[0]


def tau_check(pairs: Sequence[tuple[float | None, float | None]]) -> str:
    """(2) over (real mean tau, simulated mean tau), one pair per method."""
    ok = [
        real is not None and sim is not None and abs(sim - real) <= TAU_TOLERANCE * real
        for real, sim in pairs
    ]
    return "agrees" if ok and all(ok) else "partly agrees" if any(ok) else "disagrees"


def judge_sources(runs: Runs) -> dict[tuple[str, str], Verdict]:
    """(1) for every sparse method and source where both arms hold the same number of seeds."""
    verdicts = {}
    for method, by_source in runs.items():
        if method == VANILLA or VANILLA not in runs:
            continue
        for source in SOURCES:
            sparse, vanilla = by_source[source], runs[VANILLA][source]
            if not sparse or len(sparse) != len(vanilla):
                continue
            chance_level = CHANCE_FACTOR * sparse[0]["chance"]
            verdicts[(method, source)] = judge(
                [r["score"] for r in sparse],
                [r["score"] for r in vanilla],
                rule="not_worse",
                margin=MARGIN,
                chance_level=chance_level,
            )
    return verdicts


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
            stats = [t for r in rs if (t := staleness_of(r)) is not None]
            rows.append(
                [
                    method,
                    source,
                    spread_text([t["mean"] for t in stats], 2),
                    max((t["max"] for t in stats), default=None),
                    spread_text([r["score"] for r in rs]),
                    spread_text([flushed_accuracy(r) for r in rs]),
                    sum(r["diverged"] for r in rs),
                    mean_std([r["summary"]["wall_seconds"] for r in rs if r["summary"]])[0],
                ]
            )
    return Table(
        "async_real",
        f"{cfg.model} on {cfg.dataset}, {cfg.workers} workers slowed "
        f"{', '.join(f'{s:g}x' for s in cfg.slowdown)}, {cfg.steps} updates, lr {cfg.lr:g}",
        [
            *("method", "source", "mean tau", "largest tau"),
            *(f"accuracy after {cfg.steps} updates", "after the final flush", "diverged"),
            "wall s",
        ],
        rows,
        "real: the parameter server and worker processes; sim-workers: simulated workers at the "
        "same relative speeds (compute time calibrated from the real run); sim-drawn: one "
        "worker, tau ~ Poisson(real mean). Accuracy on the first "
        f"{cfg.test_limit} test samples. Both methods at lr {cfg.lr:g}, fixed in advance "
        "(sparsgd.experiments.async_real: the S-SGD studies' rate per sample), not tuned here.",
    )


def _verdict_table(verdicts: dict[tuple[str, str], Verdict], smoke: bool) -> Table:
    rows = [
        [
            f"{m} vs {VANILLA}",
            source,
            *(("smoke run: not judged", "-") if smoke else (v.text, v.word)),
        ]
        for (m, source), v in verdicts.items()
    ]
    return Table(
        "verdicts",
        "Sparsified vs vanilla ASGD per source (the claim: the real server's row)",
        ["comparison", "source", "paired difference and rule", "verdict"],
        rows,
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


def _reduced(cfg) -> str:
    return (
        f"the paper's experimental setup could not be read here (docs/experiments.md); "
        f"{cfg.model} on {cfg.dataset} only, {cfg.workers} workers on one machine slowed "
        f"{', '.join(f'{s:g}x' for s in cfg.slowdown)} to make staleness, {cfg.steps} updates "
        f"of batch {cfg.batch_size}, one learning rate ({cfg.lr:g}) fixed in advance, accuracy "
        f"on the first {cfg.test_limit} test samples"
    )


def _findings(cfg, runs: Runs, verdicts, smoke: bool) -> list[Finding]:
    pairs = [(_mean_tau(s["real"]), _mean_tau(s["sim-workers"])) for s in runs.values()]
    shown = "; ".join(
        f"{m}: real {'n/a' if r is None else f'{r:.2f}'}, "
        f"simulated {'n/a' if s is None else f'{s:.2f}'}"
        for m, (r, s) in zip(runs, pairs, strict=True)
    )
    check = (
        "(project check) the simulator at the same worker speeds predicts the real mean staleness"
    )
    reduced = _reduced(cfg)
    if smoke:
        return [
            Finding(check, "inconclusive", SMOKE_EVIDENCE, TAU_RULE, reduced),
            Finding(CLAIM, "inconclusive", SMOKE_EVIDENCE, CLAIM_RULE, reduced),
        ]
    findings = [Finding(check, tau_check(pairs), shown, TAU_RULE, reduced)]
    real = {m: v for (m, source), v in verdicts.items() if source == "real"}
    if real:
        word = combine(list(real.values()))
        evidence = "; ".join(f"{m} vs {VANILLA}: {v.word}, {v.text}" for m, v in real.items())
        findings.append(Finding(CLAIM, word, evidence, CLAIM_RULE, reduced))
    return findings


def async_real_outcome(
    cfg, runs: Runs, ctx: RunContext, rates: list[CellRate | None], cells: list[str]
) -> Outcome:
    """Tables, figure and findings; ``rates`` of this invocation's CellStore calls."""
    verdicts = judge_sources(runs)
    ran = [r for r in rates if r is not None and r.ran]
    notes = [
        f"This invocation ran {sum(r.ran for r in ran)} cells in "
        f"{sum(r.seconds for r in ran):.0f} s ({sum(r.reused for r in rates if r)} read back "
        "from cells/)."
        if ran
        else "Every cell was read back from cells/: nothing ran in this invocation."
    ]
    return Outcome(
        tables=[_table(cfg, runs), _verdict_table(verdicts, ctx.smoke)],
        figures=[_figure(cfg, runs, ctx)],
        findings=_findings(cfg, runs, verdicts, ctx.smoke),
        notes=notes,
        data={"cells": sorted(cells)},
    )
