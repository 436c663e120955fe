"""Per-step statistics summed over windows of steps, and the records made of them.

Each rank keeps three :class:`Tally` objects: the current logging window, the current epoch and
the whole run (the last one is saved in checkpoints). A tally is a handful of sums:

    loss_sum, loss_count             train loss of the steps that were applied
    steps, skipped                   steps run, steps skipped for a non-finite gradient
    density_sum                      sum of achieved densities (entries this rank selected / d)
    applied_sum                      sum of applied densities (nonzero entries of the total / d)
    bytes_sent, bytes_recv           exact bytes counted by the collective
    check_bytes_sent                 of which the collective's input-agreement check
    compute_s, compress_s, comm_s, apply_s    seconds: forward + backward, memory + selection,
                                     wire, scatter + optimizer step
    residual_norm                    ||e|| after the last step of the tally (not a sum)

At a logging step the ranks all-gather their window tallies (one small float64 row each; byte
counts stay exact below 2**53) and rank 0 writes one record with per-rank bytes and residual
norms, and means over ranks and steps for the rest. At the end the run tallies make
``summary.json`` (:func:`build_summary`), with ``dense_bytes_per_rank`` counted by the ring
rule of :mod:`sparsgd.comm.stats` for a dense all-reduce of d float32 values per step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from sparsgd.comm.stats import Ledger
from sparsgd.sync.config import SyncConfig
from sparsgd.sync.step import StepStats

if TYPE_CHECKING:
    from sparsgd.sync.build import Parts

__all__ = [
    "TIME_FIELDS",
    "Tally",
    "build_summary",
    "dense_bytes_per_step",
    "epoch_line",
    "gather_tallies",
    "tally_record",
    "totals_record",
]

TIME_FIELDS = ("compute_s", "compress_s", "comm_s", "apply_s")
DENSE_ITEMSIZE = 4  # float32 gradients: what dense S-SGD would all-reduce


@dataclass
class Tally:
    """Sums of this rank's step statistics over some steps (see the module docstring)."""

    loss_sum: float = 0.0
    loss_count: int = 0
    steps: int = 0
    skipped: int = 0
    density_sum: float = 0.0
    applied_sum: float = 0.0
    bytes_sent: int = 0
    bytes_recv: int = 0
    check_bytes_sent: int = 0
    compute_s: float = 0.0
    compress_s: float = 0.0
    comm_s: float = 0.0
    apply_s: float = 0.0
    residual_norm: float = 0.0

    def add(self, loss: float, compute_s: float, s: StepStats) -> None:
        """Count one step; the loss of a skipped step is left out."""
        self.steps += 1
        self.compute_s += compute_s
        if s.skipped:
            self.skipped += 1
            return
        self.loss_sum += loss
        self.loss_count += 1
        self.density_sum += s.achieved_density
        self.applied_sum += s.applied_density
        self.bytes_sent += s.bytes_sent
        self.bytes_recv += s.bytes_recv
        self.check_bytes_sent += s.check_bytes_sent
        self.compress_s += s.compress_s
        self.comm_s += s.comm_s
        self.apply_s += s.apply_s
        self.residual_norm = s.residual_norm

    def as_row(self, device: torch.device) -> torch.Tensor:
        return torch.tensor([float(v) for v in asdict(self).values()], dtype=torch.float64).to(
            device
        )

    @classmethod
    def from_row(cls, row: list[float]) -> Tally:
        values = {}
        for f, v in zip(fields(cls), row, strict=True):
            values[f.name] = round(v) if f.type == "int" else float(v)
        return cls(**values)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def gather_tallies(tally: Tally, device: torch.device) -> list[Tally]:
    """Every rank's tally, in rank order, on every rank (one all-gather)."""
    row = tally.as_row(device)  # (F,)
    rows = [torch.empty_like(row) for _ in range(dist.get_world_size())]
    dist.all_gather(rows, row)
    return [Tally.from_row(r.cpu().tolist()) for r in rows]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def tally_record(tallies: list[Tally]) -> dict[str, Any]:
    """The fields a log record takes from the ranks' tallies of one window or epoch."""
    loss_count = sum(t.loss_count for t in tallies)
    applied = [t for t in tallies if t.loss_count > 0]
    record: dict[str, Any] = {
        "train_loss": sum(t.loss_sum for t in tallies) / loss_count if loss_count else None,
        "achieved_density": (
            _mean([t.density_sum / t.loss_count for t in applied]) if applied else None
        ),
        "applied_density": (
            _mean([t.applied_sum / t.loss_count for t in applied]) if applied else None
        ),
        "bytes_sent": [t.bytes_sent for t in tallies],
        "bytes_recv": [t.bytes_recv for t in tallies],
        "check_bytes_sent": [t.check_bytes_sent for t in tallies],
        "skipped_nonfinite": tallies[0].skipped,
        "residual_norm": [t.residual_norm for t in tallies],
    }
    for name in TIME_FIELDS:  # seconds per step, mean over ranks
        record[f"time_{name}"] = _mean([getattr(t, name) / max(1, t.steps) for t in tallies])
    return record


def dense_bytes_per_step(numel: int, world: int) -> int:
    """Bytes one rank sends in a dense ring all-reduce of ``numel`` float32 values."""
    ledger = Ledger()
    ledger.all_reduce(numel, DENSE_ITEMSIZE, world)
    return ledger.stats.bytes_sent


def totals_record(run: list[Tally], numel: int) -> dict[str, Any]:
    """Cumulative bytes per rank so far, and what dense S-SGD would have sent per rank."""
    return {
        "bytes_sent_total": [t.bytes_sent for t in run],
        "bytes_recv_total": [t.bytes_recv for t in run],
        "dense_bytes_total": run[0].loss_count * dense_bytes_per_step(numel, len(run)),
    }


def build_summary(
    c: SyncConfig,
    p: Parts,
    steps: int,
    run: list[Tally],
    metrics: dict[str, float],
    wall: float,
    train_seconds: float = 0.0,
) -> dict[str, Any]:
    """The numbers of ``summary.json`` (per-rank lists are indexed by rank)."""
    applied = run[0].loss_count  # steps not skipped: the same count on every rank
    dense = applied * dense_bytes_per_step(p.numel, len(run))
    sent = [t.bytes_sent for t in run]
    metric = p.task.metric
    summary: dict[str, Any] = {
        "method": c.method,
        "model": c.model,
        "dataset": c.dataset,
        "workers": len(run),
        "density": c.density,
        "numel": p.numel,
        f"final_{metric}": metrics[metric],
        "final_test_loss": metrics["test_loss"],
        "steps": steps,
        "epochs": steps / p.steps_per_epoch,
        "steps_per_epoch": p.steps_per_epoch,
        "bytes_sent_per_rank": sent,
        "bytes_recv_per_rank": [t.bytes_recv for t in run],
        "check_bytes_sent_per_rank": [t.check_bytes_sent for t in run],
        "dense_bytes_per_rank": dense,
        "traffic_ratio_to_dense": (sum(sent) / len(sent)) / dense if dense else None,
        "wall_seconds": wall,
        "train_seconds": train_seconds,
        "num_classes": p.bundle.num_classes,
        "vocab_size": p.bundle.vocab_size,
        "skipped_nonfinite_steps": run[0].skipped,
    }
    for name in TIME_FIELDS:
        summary[f"seconds_{name[:-2]}"] = sum(getattr(t, name) for t in run) / len(run)
    return summary


def epoch_line(record: dict[str, Any], total: int, metric: str) -> str:
    value = record[metric]
    shown = f"{value:.2%}" if metric == "test_accuracy" else f"{value:.2f}"
    sent = sum(record["bytes_sent_total"]) / len(record["bytes_sent_total"])
    loss = record["train_loss"]
    loss_text = "n/a" if loss is None else f"{loss:.4f}"
    return (
        f"epoch {record['epoch']:.2f}  step {record['step']}/{total}  train loss {loss_text}  "
        f"{metric.replace('_', ' ')} {shown}  sent {sent / 1e6:.3f} MB per rank so far"
    )
