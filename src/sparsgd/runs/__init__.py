"""sparsgd.runs: the run folder shared by every trainer (config, log, summary, checkpoints)."""

from sparsgd.runs.records import NonFiniteRecordError, check_record
from sparsgd.runs.run_dir import RunDir, RunDirError, load_checkpoint

__all__ = ["NonFiniteRecordError", "RunDir", "RunDirError", "check_record", "load_checkpoint"]
