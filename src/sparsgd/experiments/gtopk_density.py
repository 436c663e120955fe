"""``gtopk-density``: gTop-k S-SGD at densities 0.001 to 0.00005 (compression 1000x-20000x).

Dense S-SGD and gTop-k S-SGD at each density, 4 workers, FNN-3 and LeNet-5 on MNIST: training
loss curves, final test accuracy and the bytes each rank sent. With d parameters a density
rho keeps k = max(1, floor(rho d)) entries per step: for LeNet-5 (d = 61,706) rho = 0.00005
leaves k = 3.

Verdict on "gTop-k keeps converging like dense at high compression": the consistency rule of
:mod:`~sparsgd.experiments.sync_study` for every (task, density); agrees if all are
consistent, partly agrees if some are, else disagrees.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparsgd.compress.checks import k_from_density
from sparsgd.experiments.spec import Experiment, Outcome, RunContext
from sparsgd.experiments.spread import mean_std
from sparsgd.experiments.sync_study import (
    ACCURACY_GAP,
    PERPLEXITY_RATIO,
    Variant,
    final_values,
    holds_up,
    metric_of,
    metric_text,
    run_grid,
    task_figure,
)
from sparsgd.experiments.sync_tasks import SyncTask
from sparsgd.report.results import Finding, Table

__all__ = ["EXPERIMENT", "DensityConfig", "density_config"]


@dataclass(frozen=True)
class DensityConfig:
    tasks: tuple[SyncTask, ...]
    densities: tuple[float, ...] = (0.001, 0.00025, 0.0001, 0.00005)
    workers: int = 4


def density_config(smoke: bool) -> DensityConfig:
    if smoke:
        task = SyncTask(
            "FNN-3 / digits", "fnn3", "digits", epochs=2, lr=0.05, hidden_size=32, log_every=5
        )
        return DensityConfig((task,), densities=(0.01, 0.001), workers=2)
    return DensityConfig(
        (
            SyncTask("FNN-3 / MNIST", "fnn3", "mnist", epochs=4, lr=0.05),
            SyncTask("LeNet-5 / MNIST", "lenet5", "mnist", epochs=4, lr=0.05),
        )
    )


def _label(density: float) -> str:
    return f"gtopk-{density:g}"


def _variants(cfg: DensityConfig) -> tuple[Variant, ...]:
    return (
        Variant("dense", "dense", 1.0),
        *(Variant(_label(rho), "gtopk", rho) for rho in cfg.densities),
    )


def _table(cfg: DensityConfig, grid) -> Table:
    rows = []
    for task in cfg.tasks:
        metric = metric_of(task)
        for v in _variants(cfg):
            runs = grid[task.key][v.label]
            numel = runs[0]["numel"]
            sent = [sum(s) / len(s) for s in final_values(runs, "bytes_sent_per_rank") if s]
            k = numel if v.method == "dense" else k_from_density(v.density, numel)
            rows.append(
                [
                    task.label,
                    v.label,
                    round(1 / v.density),
                    k,
                    metric_text(runs, metric),
                    mean_std(sent)[0],
                    mean_std(final_values(runs, "traffic_ratio_to_dense"))[0],
                ]
            )
    return Table(
        "density",
        f"Final values by density, P = {cfg.workers}",
        [
            "task",
            "variant",
            "compression 1/rho",
            "k",
            "final test accuracy / perplexity",
            "bytes sent per rank",
            "traffic / dense",
        ],
        rows,
    )


def _finding(cfg: DensityConfig, grid) -> Finding:
    results, parts = [], []
    for task in cfg.tasks:
        metric = metric_of(task)
        for rho in cfg.densities:
            ok, why = holds_up(grid[task.key]["dense"], grid[task.key][_label(rho)], metric)
            results.append(ok)
            parts.append(f"{task.key} rho={rho:g}: {why}")
    verdict = "agrees" if all(results) else ("partly agrees" if any(results) else "disagrees")
    return Finding(
        f"gTop-k S-SGD still converges like dense S-SGD at densities {min(cfg.densities):g} to "
        f"{max(cfg.densities):g} (ICDCS 2019 density study)",
        verdict,
        "; ".join(parts) + f"; rule: consistent if at most {ACCURACY_GAP} accuracy below dense "
        f"(perplexity at most {PERPLEXITY_RATIO}x) and no more seeds diverged than with dense",
    )


def run_density(cfg: DensityConfig, ctx: RunContext) -> Outcome:
    grid = run_grid(cfg.tasks, _variants(cfg), cfg.workers, ctx)
    figures = [task_figure(task, grid[task.key], ctx, f"density_{task.key}") for task in cfg.tasks]
    data = {
        key: {
            label: [{"epochs": r["epochs"], "summary": r["summary"]} for r in runs]
            for label, runs in by.items()
        }
        for key, by in grid.items()
    }
    return Outcome(
        tables=[_table(cfg, grid)], figures=figures, findings=[_finding(cfg, grid)], data=data
    )


EXPERIMENT = Experiment(
    name="gtopk-density",
    title="gTop-k S-SGD at high compression: densities 0.001 to 0.00005",
    summary="gTop-k S-SGD at density 0.001, 0.00025, 0.0001, 0.00005 (1000x-20000x) beside "
    "dense: loss curves and final accuracy, FNN-3 and LeNet-5 on MNIST",
    full_minutes=12,
    estimate="measured: 11.9 min for 2 networks x 5 variants x 4 MNIST epochs on 4 workers, "
    "2 cores shared with other work (runs that diverge stop early)",
    default_seeds=1,
    configure=density_config,
    execute=run_density,
)
