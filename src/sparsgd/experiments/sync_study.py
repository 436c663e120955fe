"""What the S-SGD studies share: running a grid of (task, variant, seed), plotting, judging.

A *variant* is one way to aggregate: a method with its density, e.g. ("gtopk", 0.001), and a
label. For every task the grid runs every variant and seed as one batch of runs on P workers
(:mod:`~sparsgd.experiments.sync_batch`), then draws per task the training loss (every logged
window, x in epochs) and the test metric per epoch, mean ± std over seeds.

"Converges like dense" is judged on the final test metric, mean over seeds: a variant is
consistent with dense when its accuracy is at most ``ACCURACY_GAP`` below dense's, or its
perplexity at most ``PERPLEXITY_RATIO`` times dense's.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from sparsgd.experiments.spec import RunContext
from sparsgd.experiments.spread import mean_curve, mean_std, spread_text
from sparsgd.experiments.sync_batch import run_sync_batch
from sparsgd.experiments.sync_tasks import SyncTask, curves_of
from sparsgd.models import LANGUAGE_MODELS
from sparsgd.report.plots import Panel, Series, draw
from sparsgd.report.results import Figure

__all__ = [
    "ACCURACY_GAP",
    "PERPLEXITY_RATIO",
    "Variant",
    "consistent_with",
    "diverged_count",
    "final_values",
    "holds_up",
    "mean_final",
    "metric_of",
    "metric_text",
    "run_grid",
    "task_figure",
]

logger = logging.getLogger(__name__)

# "nearly consistent" in numbers: the papers show curves, not a tolerance; we call a final
# test accuracy within 2 points of dense, or a perplexity within 10 % of it, consistent
ACCURACY_GAP = 0.02
PERPLEXITY_RATIO = 1.10
LOSS_HEADROOM = 1.5  # loss axis up to 1.5 x the largest starting loss


@dataclass(frozen=True)
class Variant:
    label: str
    method: str
    density: float


def metric_of(task: SyncTask) -> str:
    return "test_perplexity" if task.model in LANGUAGE_MODELS else "test_accuracy"


def run_grid(
    tasks: tuple[SyncTask, ...], variants: tuple[Variant, ...], workers: int, ctx: RunContext
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """task key -> variant label -> one run record per seed (see sync_batch.read_sync_run).

    Every run of the grid goes into one batch: the P processes start once.
    """
    configs, keys = [], []
    for task in tasks:
        for seed in ctx.seeds:
            for v in variants:
                folder = str(ctx.run_dir(task.key, f"{v.label}-seed{seed}"))
                configs.append(
                    task.config(v.method, v.density, workers, folder, seed, ctx.data_dir)
                )
                keys.append((task.key, v.label))
    logger.info("%d runs (%d tasks) on %d workers", len(configs), len(tasks), workers)
    runs = run_sync_batch(configs, verbose=not ctx.smoke, reuse=ctx.reuse)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {
        task.key: {v.label: [] for v in variants} for task in tasks
    }
    for (task_key, label), run in zip(keys, runs, strict=True):
        out[task_key][label].append(run)
    return out


def final_values(runs: list[dict[str, Any]], key: str) -> list[Any]:
    """``summary[key]`` of every seed's run (None for a run that diverged: it has none)."""
    return [None if run["summary"] is None else run["summary"][key] for run in runs]


def diverged_count(runs: list[dict[str, Any]]) -> int:
    return sum(1 for run in runs if run["diverged"])


def metric_text(runs: list[dict[str, Any]], metric: str) -> str:
    """``"0.912 ± 0.004 (n=3)"``, with how many seeds diverged when some did."""
    text = spread_text(final_values(runs, f"final_{metric}"))
    n = diverged_count(runs)
    return f"{text}, {n} of {len(runs)} diverged" if n else text


def holds_up(
    dense: list[dict[str, Any]], other: list[dict[str, Any]], metric: str
) -> tuple[bool, str]:
    """Whether ``other`` is consistent with dense (the rule above), and the numbers why.

    A variant that diverged in more seeds than dense is not consistent with it, and no run
    that stayed at chance level (``run["outcome"]``) counts as agreement.
    """
    at_chance = sum(1 for run in dense + other if run.get("outcome") == "chance")
    if at_chance:
        return False, f"{at_chance} of {len(dense) + len(other)} runs stayed at chance level"
    if diverged_count(other) > diverged_count(dense):
        return False, f"{diverged_count(other)} of {len(other)} seeds diverged"
    d, o = mean_final(dense, metric), mean_final(other, metric)
    if d is None or o is None:
        return False, "no final value"
    return consistent_with(d, o, metric), f"{o:.4g} vs dense {d:.4g}"


def consistent_with(dense: float, other: float, metric: str) -> bool:
    if metric == "test_perplexity":
        return other <= dense * PERPLEXITY_RATIO
    return other >= dense - ACCURACY_GAP


def _loss_series(label: str, runs: list[dict[str, Any]]) -> Series:
    curves = [
        ([r["epoch"] for r in run["steps"]], [r["train_loss"] for r in run["steps"]])
        for run in runs
    ]
    xs, ys, std = mean_curve(curves)
    return Series(label, xs, ys, std=std)


def _label(label: str, runs: list[dict[str, Any]]) -> str:
    n = diverged_count(runs)
    return f"{label} ({n} of {len(runs)} diverged)" if n else label


def _loss_top(series: list[Series]) -> float | None:
    """LOSS_HEADROOM x the largest first logged loss: a curve that explodes is cut off."""
    firsts = [s.y[0] for s in series if s.y and s.y[0] is not None and math.isfinite(s.y[0])]
    return LOSS_HEADROOM * max(firsts) if firsts else None


def task_figure(
    task: SyncTask, runs: dict[str, list[dict[str, Any]]], ctx: RunContext, name: str
) -> Figure:
    """Training loss and test metric against epochs, one curve per variant."""
    metric = metric_of(task)
    loss = [_loss_series(_label(label, rs), rs) for label, rs in runs.items()]
    test = []
    for label, rs in runs.items():
        curves = [(c["epoch"], c[metric]) for c in (curves_of(r, metric) for r in rs)]
        xs, ys, std = mean_curve(curves)
        test.append(Series(_label(label, rs), xs, ys, std=std))
    title = metric.replace("_", " ")
    perplexity = metric == "test_perplexity"
    path = draw(
        ctx.figure_path(name),
        [
            Panel(
                f"{task.label}: training loss",
                "epoch",
                "train loss",
                loss,
                logy=perplexity,
                ymax=_loss_top(loss),
            ),
            Panel(f"{task.label}: {title}", "epoch", title, test, logy=perplexity),
        ],
    )
    return Figure(
        path.name,
        f"{task.label}: training loss (logged windows) and {title} per epoch; bands: ± std "
        "over seeds; a run that diverged stops where its records stop",
    )


def mean_final(runs: list[dict[str, Any]], metric: str) -> float | None:
    return mean_std(final_values(runs, f"final_{metric}"))[0]
