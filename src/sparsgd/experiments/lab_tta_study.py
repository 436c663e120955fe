"""``lab-tta``: time to accuracy over the network lab's slow links, several seeds, judged.

    sparsgd experiment run lab-tta --out docs/study_results/lab-tta --data-dir DIR [--smoke]

For every link rate, method and seed, one cell (:mod:`sparsgd.experiments.lab_tta_cells`) on
a fresh emulated cluster (docs/lab.md): P nodes, every link shaped to the rate both ways,
FNN-3 on MNIST, the same batch, learning rate and momentum for every method, the methods of
:mod:`sparsgd.experiments.lab_tta` (sparsgd train dense / topk / gtopk; DDP hooks allreduce /
powersgd / sparse-gtopk); ``LabTTAConfig.links`` says which methods run at which rate. Then:

    (1) the cells run one after another through a CellStore in the study's folder (a cell's
        file holds its curve: steps, measured training seconds, wire MB, test accuracy), so an
        interrupted study resumes; never side by side: their times are wall-clock on shared
        cores
    (2) per (rate, method): time to the target, speed-ups over dense and PowerSGD, final
        accuracy, wire MB per node, time split (:mod:`sparsgd.experiments.lab_tta_verdicts`)
    (3) claims for gTop-k S-SGD against dense S-SGD and against PowerSGD, per rate, paired by
        seed: sooner to the target (rule "better" on minus the time), and at a final accuracy not
        worse (margin 0.01); a smoke run judges nothing
    (4) one figure, a row per rate: test accuracy against measured training seconds, wire MB
        per node and steps; the mean over seeds at each evaluation, every seed's thin line

The lab needs root and iproute2; the study refuses up front where the machine lacks them.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

from sparsgd.experiments.cells import CellStore
from sparsgd.experiments.lab_tta import DDP_METHODS, TRAIN_METHODS, Setup
from sparsgd.experiments.lab_tta_cells import cell_name, cell_spec, run_lab_cell
from sparsgd.experiments.lab_tta_verdicts import (
    findings,
    judgements,
    rate_words,
    tta_table,
    verdict_table,
)
from sparsgd.experiments.spec import Experiment, Outcome, RunContext
from sparsgd.experiments.spread import mean_std
from sparsgd.lab.cluster import LabUnavailable, Rate, missing_requirements
from sparsgd.report.plots import Panel, Series, draw_figure
from sparsgd.report.results import CELLS_PER_HOUR, Figure

__all__ = ["EXPERIMENT", "LabTTAConfig", "lab_tta_config", "run_lab_tta"]

X_AXES = (  # (curve key, axis label, log axis)
    ("seconds", "measured training seconds", False),
    ("wire_mb", "MB on the wire per node", True),
    ("step", "step", False),
)
STYLES = {"dense": "--", "powersgd": "-."}  # the baselines; the others solid


ALL_METHODS = ("dense", "topk", "gtopk", "powersgd", "sparse-gtopk")
BASELINE_METHODS = ("dense", "gtopk", "powersgd")  # the least that shows both baselines


@dataclass(frozen=True)
class LabTTAConfig:
    links: tuple[tuple[str, tuple[str, ...]], ...] = (  # (rate, the methods run at it)
        ("100mbit", ALL_METHODS),
        ("1gbit", BASELINE_METHODS),
    )
    target: float = 0.95
    workers: int = 4
    model: str = "fnn3"
    dataset: str = "mnist"
    density: float = 0.01
    lr: float = 0.05
    momentum: float = 0.5
    batch_size: int = 32
    steps: int = 800
    eval_every: int = 50

    def __post_init__(self) -> None:
        for rate, methods in self.links:
            Rate.parse(rate)
            for method in methods:
                if method not in TRAIN_METHODS + DDP_METHODS:
                    raise ValueError(
                        f"methods must be among {TRAIN_METHODS + DDP_METHODS}; got {method!r}"
                    )
        if not 0 < self.target < 1:
            raise ValueError(f"target must be an accuracy in (0, 1); got {self.target}")

    @property
    def rates(self) -> tuple[str, ...]:
        return tuple(rate for rate, _ in self.links)

    def setup(self, rate: str, seed: int) -> Setup:
        knobs = {k: v for k, v in asdict(self).items() if k not in ("links", "target")}
        return Setup(**knobs, rate=rate, seed=seed)


def lab_tta_config(smoke: bool) -> LabTTAConfig:
    if smoke:
        return LabTTAConfig(
            links=(("100mbit", BASELINE_METHODS),),
            target=0.6,
            workers=2,
            dataset="digits",
            steps=30,
            eval_every=10,
        )
    return LabTTAConfig()


def _cells(cfg: LabTTAConfig, seeds: tuple[int, ...]) -> list[tuple[str, dict[str, Any]]]:
    specs = [
        cell_spec(cfg.setup(rate, seed), method)
        for rate, methods in cfg.links
        for method in methods
        for seed in seeds
    ]
    return [(cell_name(spec), spec) for spec in specs]


def _series(method: str, results: list[dict[str, Any]], x_key: str) -> Series:
    """(4): the mean over seeds at each evaluation (the seeds share the evaluation steps)."""
    curves = [r["curve"] for r in results]
    n = min(len(c["step"]) for c in curves)
    xs = [mean_std([c[x_key][i] for c in curves])[0] for i in range(n)]
    ys = [mean_std([c["accuracy"][i] for c in curves])[0] for i in range(n)]
    runs = [(c[x_key], c["accuracy"]) for c in curves]
    return Series(method, xs, ys, style=STYLES.get(method, "-"), runs=runs)


def _figure(cfg: LabTTAConfig, runs: dict, ctx: RunContext) -> Figure:
    panels = []
    for rate, methods in cfg.links:
        for x_key, x_label, log in X_AXES:
            series = [_series(m, runs[(rate, m)], x_key) for m in methods]
            panels.append(
                Panel(
                    f"{rate_words(rate)}: test accuracy",
                    x_label,
                    "test accuracy",
                    series,
                    logx=log,
                    hline=(cfg.target, f"target {cfg.target:g}"),
                )
            )
    caption = (
        f"{cfg.model} on {cfg.dataset}, P = {cfg.workers} lab nodes: test accuracy against "
        "measured training seconds, MB on the wire per node and steps, one row per link rate; "
        f"mean over {len(ctx.seeds)} seed(s), thin lines: each seed"
    )
    return draw_figure(ctx.out, "tta.png", caption, panels, ncols=len(X_AXES), sharey=True)


def _loads(results: dict[str, dict[str, Any]]) -> tuple[float, float]:
    loads = [v for r in results.values() for v in r["load"]]
    return min(loads), max(loads)


def _links_text(cfg: LabTTAConfig) -> str:
    return "; ".join(f"{rate_words(rate)}: {', '.join(methods)}" for rate, methods in cfg.links)


def _reduced(cfg: LabTTAConfig, ctx: RunContext, loads: tuple[float, float]) -> str:
    return (
        f"{cfg.model} on {cfg.dataset} (the papers: VGG-16, ResNet and LSTMs on GPU clusters "
        f"over 1 GbE and 10 GbE); P = {cfg.workers} emulated nodes sharing this machine's CPU "
        "cores; bandwidth emulated, no latency (tbf only: a sequence of messages such as the "
        f"gTop-k tree looks cheaper than on a real network); {cfg.steps} steps, evaluated "
        f"every {cfg.eval_every}; {_links_text(cfg)}; {len(ctx.seeds)} seed(s); "
        f"1-minute load average {loads[0]:g}-{loads[1]:g} during the cells (the times are "
        "wall-clock on shared cores)"
    )


def run_lab_tta(cfg: LabTTAConfig, ctx: RunContext) -> Outcome:
    missing = missing_requirements()
    if missing:
        raise LabUnavailable("lab-tta needs the network lab; missing: " + "; ".join(missing))
    cells = _cells(cfg, ctx.seeds)
    store = CellStore(ctx.out)
    results = store.run_all(cells, functools.partial(run_lab_cell, data_dir=ctx.data_dir))  # (1)
    runs = {
        (rate, method): [
            results[cell_name(cell_spec(cfg.setup(rate, s), method))] for s in ctx.seeds
        ]
        for rate, methods in cfg.links
        for method in methods
    }
    loads = _loads(results)
    reduced = _reduced(cfg, ctx, loads)
    rate = store.last_rate
    ran = (
        f"This invocation ran {rate.ran} cells ({rate.reused} read back from cells/) in "
        f"{rate.seconds:.0f} s."
        if rate and rate.ran
        else "Every cell was read back from cells/: nothing ran in this invocation."
    )
    note = (
        "Time to target: the first evaluation at or above it, measured training seconds "
        "(mean and 95% t interval over the seeds that reached it); speed-up: t_baseline / "
        f"t_method per seed, mean and 95% t interval. Load average {loads[0]:g}-{loads[1]:g}. "
        + ran
    )
    found = judgements(runs, cfg.target)  # (3)
    data: dict[str, Any] = {"cells": sorted(results), "load": list(loads)}
    if rate is not None:
        data[CELLS_PER_HOUR] = {**asdict(rate), "per_hour": rate.per_hour}
    return Outcome(
        tables=[tta_table(runs, cfg.target, note), verdict_table(found, cfg.target, ctx.smoke)],
        figures=[_figure(cfg, runs, ctx)],
        findings=findings(found, cfg.rates, cfg.target, reduced, ctx.smoke),
        notes=[f"Reduced: {reduced}."],
        data=data,
    )


EXPERIMENT = Experiment(
    name="lab-tta",
    title="Time to accuracy over the network lab's slow links",
    summary="measured seconds to 95 % test accuracy on 4 emulated nodes (needs root): gTop-k, "
    "Top-k, dense S-SGD, DDP PowerSGD and sparse hooks at 100 Mbit/s, dense, gTop-k and "
    "PowerSGD at 1 Gbit/s; FNN-3 on MNIST, 800 steps, 3 seeds",
    full_minutes=22,
    estimate="estimated at load ~3: the one-seed lab runs' step times (load 2.6-3.9) x 800 "
    "steps = 270 s per seed, plus ~20 s of start-up per cell (8 cells) = ~430 s per seed; a "
    "measured sample (5 cells of 200 steps at 100 Mbit/s, load 6-13: 337 s, ~50 s start-up "
    "per cell) puts it at ~42 min at load 11",
    default_seeds=3,
    configure=lab_tta_config,
    execute=run_lab_tta,
)
