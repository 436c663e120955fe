"""sparsgd.runs: the run folder shared by every trainer (config, log, summary, checkpoints)."""

from sparsgd.runs.complete import closing_lines, complete_summary, completed
from sparsgd.runs.lock import RunLock
from sparsgd.runs.outcome import OUTCOMES, Outcome, judge, with_outcome
from sparsgd.runs.records import NonFiniteRecordError, check_record
from sparsgd.runs.run_dir import RunDir, RunDirError, load_checkpoint

__all__ = [
    "OUTCOMES",
    "NonFiniteRecordError",
    "Outcome",
    "RunDir",
    "RunDirError",
    "RunLock",
    "check_record",
    "closing_lines",
    "complete_summary",
    "completed",
    "judge",
    "load_checkpoint",
    "with_outcome",
]
