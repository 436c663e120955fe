"""``gtopk-convergence``: dense vs Top-k vs gTop-k S-SGD on 4 workers, density 0.001.

The ICDCS 2019 convergence study, on the networks this project can train on CPU: FNN-3 and
LeNet-5 on MNIST (4 epochs), ResNet-20 on Fashion-MNIST (1 epoch), and a reduced LSTM
(2 x 200 units, 4 epochs) on the first 300,000 tokens of the Penn Treebank. Every run is a
real ``sparsgd train`` run (4 processes, gloo); all runs share one launch of the processes.

Output: per task, training loss and test accuracy (perplexity) per epoch; a table of final
values and of the bytes each rank sent, beside what dense S-SGD sends. Verdict on "gTop-k
converges like dense S-SGD": the rule of :mod:`~sparsgd.experiments.sync_study` per task;
agrees if every task is consistent, partly agrees if some are, else disagrees.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparsgd.experiments.spec import Experiment, Outcome, RunContext
from sparsgd.experiments.spread import mean_std, spread_text
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

__all__ = ["EXPERIMENT", "ConvergenceConfig", "convergence_config"]


@dataclass(frozen=True)
class ConvergenceConfig:
    tasks: tuple[SyncTask, ...]
    density: float = 0.001
    workers: int = 4
    methods: tuple[str, ...] = ("dense", "topk", "gtopk")


FULL_TASKS = (
    SyncTask("FNN-3 / MNIST", "fnn3", "mnist", epochs=4, lr=0.05),
    SyncTask("LeNet-5 / MNIST", "lenet5", "mnist", epochs=4, lr=0.05),
    SyncTask(
        "ResNet-20 / Fashion-MNIST",
        "resnet20",
        "fashion-mnist",
        epochs=1,
        lr=0.1,
        weight_decay=1e-4,
    ),
    SyncTask(
        "LSTM 2x200 / PTB (300k tokens)",
        "lstm",
        "ptb",
        epochs=4,
        lr=1.0,
        momentum=0.0,
        clip=5.0,
        reduced=True,
        max_tokens=300_000,
        batch_size=20,
        bptt=35,
        log_every=10,
    ),
)
SMOKE_TASKS = (
    SyncTask("FNN-3 / digits", "fnn3", "digits", epochs=2, lr=0.05, hidden_size=32, log_every=5),
    SyncTask(
        "LSTM 16 units / synthetic text",
        "lstm",
        "synthetic-lm",
        epochs=1,
        lr=1.0,
        momentum=0.0,
        clip=5.0,
        hidden_size=16,
        max_tokens=2_000,
        batch_size=4,
        bptt=10,
        log_every=5,
    ),
)


def convergence_config(smoke: bool) -> ConvergenceConfig:
    if smoke:
        return ConvergenceConfig(SMOKE_TASKS, density=0.01, workers=2)
    return ConvergenceConfig(FULL_TASKS)


def _variants(cfg: ConvergenceConfig) -> tuple[Variant, ...]:
    return tuple(Variant(m, m, cfg.density) for m in cfg.methods)


def _table(cfg: ConvergenceConfig, grid) -> Table:
    rows = []
    for task in cfg.tasks:
        metric = metric_of(task)
        for method in cfg.methods:
            runs = grid[task.key][method]
            sent = [sum(s) / len(s) for s in final_values(runs, "bytes_sent_per_rank") if s]
            dense_bytes = [b for b in final_values(runs, "dense_bytes_per_rank") if b is not None]
            rows.append(
                [
                    task.label,
                    method,
                    metric_text(runs, metric),
                    spread_text(final_values(runs, "final_test_loss")),
                    mean_std(sent)[0],
                    dense_bytes[0] if dense_bytes else None,
                    mean_std(final_values(runs, "traffic_ratio_to_dense"))[0],
                    mean_std(final_values(runs, "wall_seconds"))[0],
                ]
            )
    return Table(
        "final",
        f"Final values after training, P = {cfg.workers}, density {cfg.density}",
        [
            "task",
            "method",
            "final test accuracy / perplexity",
            "final test loss",
            "bytes sent per rank",
            "dense would send",
            "traffic / dense",
            "wall s",
        ],
        rows,
        "Bytes are counted by the collectives (mean over ranks and seeds); 'dense would send' is "
        "a dense ring all-reduce of the same steps. Wall seconds include evaluation and "
        "checkpoints, on this shared machine.",
    )


def _finding(cfg: ConvergenceConfig, grid) -> Finding:
    verdicts, parts = [], []
    for task in cfg.tasks:
        ok, why = holds_up(grid[task.key]["dense"], grid[task.key]["gtopk"], metric_of(task))
        verdicts.append(ok)
        parts.append(f"{task.label}: gtopk {why}")
    verdict = "agrees" if all(verdicts) else ("partly agrees" if any(verdicts) else "disagrees")
    return Finding(
        "gTop-k S-SGD converges nearly consistently with dense S-SGD (ICDCS 2019, IJCAI 2019)",
        verdict,
        "; ".join(parts) + f" (final test metric, mean over seeds); rule: consistent if the "
        f"accuracy is at most {ACCURACY_GAP} below dense or the perplexity at most "
        f"{PERPLEXITY_RATIO}x dense's, and no more seeds diverged than with dense",
    )


def run_convergence(cfg: ConvergenceConfig, ctx: RunContext) -> Outcome:
    grid = run_grid(cfg.tasks, _variants(cfg), cfg.workers, ctx)
    figures = [
        task_figure(task, grid[task.key], ctx, f"convergence_{task.key}") for task in cfg.tasks
    ]
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
    name="gtopk-convergence",
    title="Convergence of dense, Top-k and gTop-k S-SGD (ICDCS 2019)",
    summary="dense vs Top-k vs gTop-k S-SGD, 4 workers, density 0.001: FNN-3 and LeNet-5 "
    "on MNIST, ResNet-20 on Fashion-MNIST, reduced LSTM on PTB",
    full_minutes=40,
    estimate="measured: 37 min for 4 tasks x 3 methods on 4 workers (FNN-3, LeNet-5: 4 MNIST "
    "epochs; ResNet-20: 1 Fashion-MNIST epoch; LSTM: 4 epochs of 300k PTB tokens) on 2 cores "
    "shared with other work",
    default_seeds=1,
    configure=convergence_config,
    execute=run_convergence,
)
