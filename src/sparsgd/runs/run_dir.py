"""The run folder: one directory per training run, the same layout for every trainer.

    DIR/config.json          the resolved configuration (atomic write)
    DIR/log.jsonl            one JSON record per line, appended and flushed as the run goes
    DIR/summary.json         the final numbers (atomic write, rewritten at the end)
    DIR/checkpoints/step-<step, 10 digits>.pt   the last ``keep_checkpoints`` checkpoints
    DIR/tensorboard/         optional TensorBoard events
    DIR/.lock                the PID of the process that writes the run (sparsgd.runs.lock)

Rules: a fresh run refuses a folder that already holds files (``resume=True`` continues the run
in it, ``overwrite=True`` deletes the files above, and only those, first); every record is
checked for NaN / infinity before it is written (:mod:`sparsgd.runs.records`); config,
summary and checkpoints are replaced atomically (:mod:`sparsgd.runs.atomic`), so a crash
leaves the previous version, never half a file. Only one process (rank 0) writes.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import IO, Any

import torch

from sparsgd.runs.atomic import atomic_write_text, atomic_write_with
from sparsgd.runs.records import check_record, dumps_record

__all__ = [
    "CHECKPOINT_PATTERN",
    "LOCK_FILE",
    "RUN_FILES",
    "RunDir",
    "RunDirError",
    "load_checkpoint",
]

logger = logging.getLogger(__name__)

CONFIG = "config.json"
LOG = "log.jsonl"
SUMMARY = "summary.json"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
RUN_FILES = (CONFIG, LOG, SUMMARY, CHECKPOINTS, TENSORBOARD)
CHECKPOINT_PATTERN = "step-*.pt"
LOCK_FILE = ".lock"  # the writer's lock (sparsgd.runs.lock); not a run file


class RunDirError(RuntimeError):
    """The folder cannot be used as asked (exists, not a run, nothing to resume)."""


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :meth:`RunDir.save_checkpoint` (tensors and plain data only)."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load has no single error type for a damaged file
        raise RunDirError(
            f"checkpoint {path} cannot be read ({err}); delete it to fall back to an older one"
        ) from err
    if not isinstance(state, dict):
        raise RunDirError(f"checkpoint {path} must hold a dict; got {type(state).__name__}")
    return state


class RunDir:
    """One run's folder: ``RunDir(path)`` starts a run, ``RunDir(path, resume=True)`` goes on."""

    def __init__(
        self,
        path: str | Path,
        resume: bool = False,
        *,
        overwrite: bool = False,
        keep_checkpoints: int = 3,
    ) -> None:
        if resume and overwrite:
            raise ValueError("resume and overwrite exclude each other; got both")
        if keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be >= 1; got {keep_checkpoints}")
        self.path = Path(path)
        self.keep_checkpoints = keep_checkpoints
        self._log_file: IO[str] | None = None
        if resume:
            self._open_existing()
        else:
            self._open_fresh(overwrite)
        (self.path / CHECKPOINTS).mkdir(exist_ok=True)

    # -- opening -----------------------------------------------------------------------------
    def _open_existing(self) -> None:
        if not (self.path / CONFIG).is_file():
            raise RunDirError(
                f"cannot resume {self.path}: it holds no {CONFIG}, so it is not a run folder "
                "(start a new run with --out instead)"
            )

    def _open_fresh(self, overwrite: bool) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"run folder {self.path} exists and is not a directory")
        if self.path.is_dir() and any(p.name != LOCK_FILE for p in self.path.iterdir()):
            if not overwrite:
                raise RunDirError(
                    f"run folder {self.path} is not empty; pass --resume to continue that run "
                    "or --overwrite to replace its run files"
                )
            self._remove_run_files()
        self.path.mkdir(parents=True, exist_ok=True)

    def _remove_run_files(self) -> None:
        """Delete the files a run writes, and nothing else the user keeps in the folder."""
        for name in RUN_FILES:
            target = self.path / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        logger.warning("overwrote the run files in %s", self.path)

    # -- config and summary ------------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        """Replace ``config.json`` with ``config`` (atomic)."""
        atomic_write_text(self.path / CONFIG, dumps_record(config, indent=2) + "\n")

    def read_config(self) -> dict[str, Any]:
        return self._read_json(CONFIG)

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Replace ``summary.json`` with ``summary`` (atomic)."""
        atomic_write_text(self.path / SUMMARY, dumps_record(summary, indent=2) + "\n")

    def read_summary(self) -> dict[str, Any]:
        return self._read_json(SUMMARY)

    def _read_json(self, name: str) -> dict[str, Any]:
        file = self.path / name
        try:
            return json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise RunDirError(f"{file} does not exist") from err
        except json.JSONDecodeError as err:
            raise RunDirError(f"{file} is not valid JSON ({err})") from err

    # -- log ---------------------------------------------------------------------------------
    def log(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line of ``log.jsonl`` and flush; refuses NaN / infinity."""
        check_record(record, "log record")
        line = dumps_record(record)
        if self._log_file is None:
            self._log_file = open(self.path / LOG, "a", encoding="utf-8")  # noqa: SIM115
        self._log_file.write(line + "\n")
        self._log_file.flush()

    def read_log(self) -> list[dict[str, Any]]:
        """All records of ``log.jsonl`` in order (empty when there is none yet)."""
        file = self.path / LOG
        if not file.exists():
            return []
        with open(file, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def truncate_log(self, last_step: int, key: str = "step") -> int:
        """Keep only records whose ``key`` is <= ``last_step`` (a resume from that step).

        Records without ``key`` are kept. Returns how many records were dropped. The rewrite is
        atomic, so the log equals what the uninterrupted run had written up to ``last_step``.
        """
        self.close()
        records = self.read_log()
        kept = [r for r in records if key not in r or r[key] <= last_step]
        text = "".join(dumps_record(r) + "\n" for r in kept)
        atomic_write_text(self.path / LOG, text)
        return len(records) - len(kept)

    # -- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self, state: dict[str, Any], step: int) -> Path:
        """Write ``state`` to ``checkpoints/step-<step>.pt`` atomically; keep the newest few."""
        if step < 0:
            raise ValueError(f"step must be >= 0; got {step}")
        target = self.path / CHECKPOINTS / f"step-{step:010d}.pt"
        atomic_write_with(target, lambda f: torch.save(state, f))
        for old in self.checkpoints()[: -self.keep_checkpoints]:
            old.unlink()
        return target

    def checkpoints(self) -> list[Path]:
        """Checkpoint files, oldest first (the zero-padded step sorts them)."""
        return sorted((self.path / CHECKPOINTS).glob(CHECKPOINT_PATTERN))

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint of the highest step, or ``None`` when there is none."""
        found = self.checkpoints()
        return found[-1] if found else None

    def latest_step(self) -> int | None:
        """The step of :meth:`latest_checkpoint` (read from its name), or ``None``."""
        latest = self.latest_checkpoint()
        return None if latest is None else int(latest.stem.removeprefix("step-"))

    def load_latest_checkpoint(self) -> tuple[Path, dict[str, Any]]:
        """The newest checkpoint that can be read, and its state.

        A newer file that cannot be read (truncated, corrupt) is skipped with a warning naming
        it, and left in place for inspection; the next older one is tried. Raises
        :class:`RunDirError` naming every unreadable file when none can be read.
        """
        problems: list[str] = []
        for path in reversed(self.checkpoints()):
            try:
                return path, load_checkpoint(path)
            except RunDirError as err:
                problems.append(str(err))
                logger.warning("%s; falling back to the newest older checkpoint", err)
        if not problems:
            raise RunDirError(f"cannot resume {self.path}: it holds no checkpoint")
        raise RunDirError(
            f"cannot resume {self.path}: no checkpoint can be read; " + "; ".join(problems)
        )

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
