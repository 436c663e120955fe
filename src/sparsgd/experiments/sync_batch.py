"""Several S-SGD runs of the same P in one launch of P processes, and their curves read back.

    runs = run_sync_batch([SyncConfig(out="a", ...), SyncConfig(out="b", ...)])
    runs[0]["epochs"]    # the "epoch" records of a/log.jsonl: loss, test metric, bytes
    runs[0]["summary"]   # a/summary.json

Starting P processes costs seconds (each imports torch and joins the group), more than a
small run itself, so the runs of one experiment share them: (1) the parent checks every config
and creates its run folder (``sparsgd.sync.train.prepare``), (2) one ``launch`` of P workers
runs ``train_worker`` for each config in turn (the same entry point as ``sparsgd train``), (3)
the parent reads each folder back. Each run is exactly the run ``sparsgd train`` would make.

A run that diverges (a record or tensor stops being finite) stops the launch; it is kept as
diverged, with the records written before, and the runs after it get a new launch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sparsgd.comm.launch import LaunchOptions, WorkerContext, WorkerFailed, launch
from sparsgd.runs import RunDir, judge
from sparsgd.sync.config import SyncConfig
from sparsgd.sync.train import prepare
from sparsgd.sync.trainer import TrainJob, train_worker

__all__ = ["finished_before", "read_sync_run", "run_sync_batch"]

logger = logging.getLogger(__name__)

SUMMARY = "summary.json"  # written by a run that finished
CONFIG = "config.json"
# a run stopped by these diverged (its model or a record stopped being finite); any other
# failure is a failure of the experiment and is raised
DIVERGED_ERRORS = ("NonFiniteRecordError", "NonFiniteError")


def _train_all(ctx: WorkerContext, jobs: tuple[TrainJob, ...]) -> None:
    """(2) every rank runs the jobs in the same order; each is a complete run."""
    for job in jobs:
        train_worker(ctx, job)


def _rank0_logs(rank: int) -> None:
    """Let rank 0 report its epochs (the trainer logs one line per epoch)."""
    if rank == 0:
        logging.basicConfig(level=logging.INFO, format="%(message)s")


def read_sync_run(out: str, diverged: str | None = None) -> dict[str, Any]:
    """(3) the summary and the "epoch" and "step" records of the run folder ``out``.

    ``diverged``: why the run stopped early (its summary is then None, its records are those
    written before).
    """
    run = RunDir(out, resume=True)
    try:
        log = run.read_log()
        summary = None if diverged else run.read_summary()
    finally:
        run.close()
    outcome = "diverged" if diverged else judge(summary).label
    if outcome == "diverged" and summary is not None:  # finite, but the loss exploded
        summary, diverged = None, judge(summary).line()
    start = next((r for r in log if r.get("kind") == "start"), {})
    return {
        "summary": summary,
        "diverged": diverged,
        "outcome": outcome,  # "ok" | "diverged" | "chance" (sparsgd.runs.outcome)
        "numel": start.get("numel"),
        "epochs": [r for r in log if r.get("kind") == "epoch"],
        "steps": [r for r in log if r.get("kind") == "step"],
    }


def _diverged_reason(err: WorkerFailed) -> str | None:
    """The last line of the error when a run stopped on a non-finite value, else None."""
    text = str(err)
    if not any(name in text for name in DIVERGED_ERRORS):
        return None
    lines = [line for line in text.splitlines() if any(n in line for n in DIVERGED_ERRORS)]
    return lines[-1].strip() if lines else text.strip().splitlines()[-1]


def finished_before(config: SyncConfig) -> bool:
    """Whether ``config.out`` holds a finished run of exactly ``config`` (for ``reuse``)."""
    folder = Path(config.out)
    if not (folder / SUMMARY).is_file() or not (folder / CONFIG).is_file():
        return False
    stored = json.loads((folder / CONFIG).read_text())
    return stored == json.loads(json.dumps(config.to_dict()))


def run_sync_batch(
    configs: list[SyncConfig], verbose: bool = False, reuse: bool = False
) -> list[dict[str, Any]]:
    """Steps (1)-(3) for ``configs`` (all with the same workers, device and timeout).

    ``reuse``: a run whose folder already holds a finished run of the same config is read
    back instead of run again (to redraw an experiment, or finish an interrupted one).
    """
    if not configs:
        return []
    first = configs[0]
    for c in configs[1:]:
        if (c.workers, c.device, c.timeout_s) != (first.workers, first.device, first.timeout_s):
            raise ValueError(
                "configs of one batch must share workers, device and timeout_s; got "
                f"{(c.workers, c.device, c.timeout_s)} after "
                f"{(first.workers, first.device, first.timeout_s)}"
            )
    kept = {i for i, c in enumerate(configs) if reuse and finished_before(c)}
    jobs = [  # (1)
        None if i in kept else TrainJob(prepare(c, overwrite=True), False)
        for i, c in enumerate(configs)
    ]
    logger.info(
        "%d S-SGD runs on %d workers (%d finished before, reused): %s",
        len(jobs),
        first.workers,
        len(kept),
        ", ".join(c.out for c in configs),
    )
    pending, diverged = [i for i in range(len(jobs)) if i not in kept], {}
    while pending:  # (2), again after a run that diverged, for the runs not started yet
        try:
            launch(
                _train_all,
                first.workers,
                (tuple(jobs[i] for i in pending),),
                LaunchOptions(
                    device=first.device,
                    timeout_s=first.timeout_s,
                    setup=_rank0_logs if verbose else None,
                ),
            )
            pending = []
        except WorkerFailed as err:
            reason = _diverged_reason(err)
            if reason is None:
                raise
            done = [i for i in pending if (Path(configs[i].out) / SUMMARY).is_file()]
            failed = next(i for i in pending if i not in done)
            logger.warning("%s diverged: %s", configs[failed].out, reason)
            diverged[failed] = reason
            pending = [i for i in pending if i not in done and i != failed]
    return [read_sync_run(c.out, diverged.get(i)) for i, c in enumerate(configs)]  # (3)
