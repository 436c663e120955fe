"""Optional TensorBoard events in ``DIR/tensorboard``: a viewer on the records of ``log.jsonl``.

The run folder's ``log.jsonl`` is the record of a run; TensorBoard shows the same numbers, fed
from the same records (one source), for the three modes (docs/training.md, TensorBoard). This
module is the one place that knows the tag names:

    bytes/sent_total/rank{r}, bytes/recv_total/rank{r}   cumulative payload bytes of rank r
                                                         (async, sim: of worker r)
    bytes/sent_per_step/rank{r}, bytes/recv_per_step/... (total_t - total_s) / (t - s) between
                                                         two consecutive records s < t   # (1)
    traffic/ratio_to_dense        mean sent_total / dense_bytes_total (what dense SGD sends)
    density/scheduled, density/achieved, density/applied     entries kept / d
    residual_norm/rank{r}         ||e|| of rank r's error-feedback memory
    time/compute_s, time/compress_s, time/comm_s, time/apply_s, time/wait_s    the time
                                  split; sync: seconds per step, mean over ranks (no wait);
                                  async, sim: a worker cycle's compute and comm, the server's
                                  apply and wait per update (asynchronous.run_record; sim:
                                  compute and comm only, simulated seconds)
    time/seconds                  clock of the record (async: wall, sim: simulated)
    train/loss, train/loss_epoch (sync evaluations: the epoch's mean), train/lr,
    train/skipped_nonfinite, test/accuracy, test/loss, test/perplexity
    staleness/tau (histogram), staleness/mean                 taus of the window (async, sim)
    final/<metric> + the hparams plugin's three summaries     at the end          # (2)

(1) A record's cumulative totals minus the previous record's, divided by the steps between
them; after a resume the first record only sets the baseline. (2) The run's settings (scalars;
tuples and lists as text) against its final metrics, for the HParams dashboard.

``torch.utils.tensorboard`` needs the ``tensorboard`` package, which sparsgd does not require:
asking for events without it is an error that says how to install it, raised before any
training starts.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["FINAL_METRICS", "TensorBoardLog", "require_tensorboard"]

# record field -> tag, written whenever the record holds a number there
SCALARS = {
    "train_loss": "train/loss",
    "loss": "train/loss",
    "lr": "train/lr",
    "skipped_nonfinite": "train/skipped_nonfinite",
    "density": "density/scheduled",
    "achieved_density": "density/achieved",
    "applied_density": "density/applied",
    "test_accuracy": "test/accuracy",
    "test_loss": "test/loss",
    "test_perplexity": "test/perplexity",
    "time_compute_s": "time/compute_s",
    "time_compress_s": "time/compress_s",
    "time_comm_s": "time/comm_s",
    "time_apply_s": "time/apply_s",
    "time_wait_s": "time/wait_s",
    "seconds": "time/seconds",
}
# summary.json keys shown against the settings in the HParams dashboard
FINAL_METRICS = (
    "final_test_accuracy",
    "final_test_loss",
    "final_test_perplexity",
    "traffic_ratio_to_dense",
    "train_seconds",
)
HPARAM_TYPES = (bool, int, float, str)
# sync evaluation records repeat the step record's lr and density at the same step, and carry
# the epoch's mean train loss: only these fields of theirs are written
EVAL_KINDS = ("epoch", "final")
EVAL_TAGS = {
    "train_loss": "train/loss_epoch",
    "test_accuracy": "test/accuracy",
    "test_loss": "test/loss",
    "test_perplexity": "test/perplexity",
}


def require_tensorboard() -> None:
    """Raise ``RuntimeError`` with the install command when ``tensorboard`` is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise RuntimeError(
            "--tensorboard needs the 'tensorboard' package, which is not installed; "
            "install it with `pip install 'sparsgd[tensorboard]'` or drop --tensorboard"
        )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ratio(sent: Sequence[float], dense: Any) -> float | None:
    """Mean bytes sent over the dense bytes of one rank (``dense``: one count or per rank)."""
    dense_mean = sum(dense) / len(dense) if isinstance(dense, list) else dense
    if not sent or not dense_mean:
        return None
    return (sum(sent) / len(sent)) / dense_mean


class TensorBoardLog:
    """Writes log records and the final summary as TensorBoard events (module docstring)."""

    def __init__(self, folder: Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter  # needs tensorboard: checked above

        self._writer = SummaryWriter(log_dir=str(folder))
        # (step, sent totals, recv totals) of the previous record; None: no baseline (resumed)
        self._previous: tuple[int, list[int], list[int]] | None = (0, [], [])

    def forget_baseline(self) -> None:
        """After a resume: the next record's totals start the per-step differences."""
        self._previous = None

    def log(self, record: dict[str, Any], step: int) -> None:
        """Every field of ``record`` that has a tag; a "resume" record resets the baseline."""
        if record.get("kind") == "resume":
            self.forget_baseline()
        tags = EVAL_TAGS if record.get("kind") in EVAL_KINDS else SCALARS
        for key, tag in tags.items():
            if _number(record.get(key)):
                self._writer.add_scalar(tag, record[key], global_step=step)
        norms = record.get("residual_norm")
        if isinstance(norms, list):
            self._per_rank("residual_norm", norms, step)
        elif _number(norms) and "worker" in record:
            self._writer.add_scalar(f"residual_norm/rank{record['worker']}", norms, step)
        if "bytes_sent_total" in record:
            self._bytes(record, step)
        taus = record.get("taus")
        if taus:
            values = torch.tensor(taus, dtype=torch.float64)
            self._writer.add_histogram("staleness/tau", values, global_step=step, bins="auto")
            self._writer.add_scalar("staleness/mean", sum(taus) / len(taus), step)

    def _per_rank(self, name: str, values: Sequence[float], step: int) -> None:
        for rank, value in enumerate(values):
            self._writer.add_scalar(f"{name}/rank{rank}", value, global_step=step)

    def _bytes(self, record: dict[str, Any], step: int) -> None:
        sent, recv = list(record["bytes_sent_total"]), list(record["bytes_recv_total"])
        if self._previous is not None and self._previous == (step, sent, recv):
            return  # an evaluation record repeating the step record's totals
        self._per_rank("bytes/sent_total", sent, step)
        self._per_rank("bytes/recv_total", recv, step)
        ratio = _ratio(sent, record.get("dense_bytes_total"))
        if ratio is not None:
            self._writer.add_scalar("traffic/ratio_to_dense", ratio, step)
        previous = self._previous
        self._previous = (step, sent, recv)
        if previous is None or step <= previous[0]:
            return
        steps = step - previous[0]  # (1)
        before_sent = previous[1] or [0] * len(sent)
        before_recv = previous[2] or [0] * len(recv)
        self._per_rank(
            "bytes/sent_per_step",
            [(a - b) / steps for a, b in zip(sent, before_sent, strict=True)],
            step,
        )
        self._per_rank(
            "bytes/recv_per_step",
            [(a - b) / steps for a, b in zip(recv, before_recv, strict=True)],
            step,
        )

    def _final_totals(self, summary: dict[str, Any], step: int) -> None:
        """The summary's byte totals, when bytes moved after the last record (a final flush)."""
        sent = list(summary.get("bytes_sent_per_rank") or [])
        recv = summary.get("bytes_recv_per_rank", summary.get("bytes_downlink_per_worker"))
        if self._previous is not None and (sent, list(recv or [])) == self._previous[1:]:
            return
        if recv is not None:
            self._per_rank("bytes/sent_total", sent, step)
            self._per_rank("bytes/recv_total", list(recv), step)

    def finish(self, settings: dict[str, Any], summary: dict[str, Any], step: int) -> None:
        """(2) The settings against the final metrics of ``summary``; then close the file."""
        from torch.utils.tensorboard.summary import hparams  # needs tensorboard: checked

        metrics = {
            f"final/{k[len('final_') :] if k.startswith('final_') else k}": summary[k]
            for k in FINAL_METRICS
            if _number(summary.get(k))
        }
        if "traffic_ratio_to_dense" not in summary:
            ratio = _ratio(
                summary.get("bytes_sent_per_rank") or [], summary.get("dense_bytes_per_rank")
            )
            if ratio is not None:
                metrics["final/traffic_ratio_to_dense"] = ratio
        for tag, value in metrics.items():
            self._writer.add_scalar(tag, value, global_step=step)
        self._final_totals(summary, step)
        values = {
            key: value if isinstance(value, HPARAM_TYPES) else str(value)
            for key, value in settings.items()
            if value is not None and not isinstance(value, dict)
        }
        writer = self._writer._get_file_writer()  # the same events file as the scalars
        for summary_proto in hparams(values, metrics):
            writer.add_summary(summary_proto)
        self.close()

    def close(self) -> None:
        self._writer.close()
