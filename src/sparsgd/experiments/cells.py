"""Finished cells of a study as small JSON files: a study resumes, a report rereads them.

    store = CellStore(Path("docs/study_results/gtopk-density"))
    results = store.run_all(cells, run_cell, workers=2)   # {cell name: result dict}

A *cell* is one training run of a study: a name (``"lenet5-gtopk-0.001-authors-s0"``) and a
spec, a JSON-able dict that fixes everything the run depends on (network, method, recipe,
seed, budget, the code's ``CELL_VERSION``). Then:

    (1) key(spec)       = first 16 hex digits of sha256(canonical JSON of spec)
    (2) file            = folder/cells/<name>.json = {"name", "key", "spec", "result", "seconds"}
    (3) get(name, spec) = the stored result when the file's key is key(spec), else None:
                          a cell whose spec changed is run again, never mixed in
    (4) run_all         = get() for every cell; the missing ones go to ``run_cell(spec)``, in
                          this process (workers = 1) or in a pool of ``workers`` processes, each
                          with one torch thread; every result is written as soon as it is back
                          (atomic rename), so an interrupted study loses at most the cells that
                          were running; SIGTERM or Ctrl-C stops the pool's processes too
    (5) rate            = cells run / wall hours of this call (``store.last_rate``), the
                          measure of "runs per hour" a study reports

``run_cell`` must be a module-level function (it is pickled into the pool) that returns a
JSON-able dict. The files are small (final metrics and per-epoch curves), so a study's
``cells/`` folder is committed beside its ``results.json``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["CellRate", "CellStore", "cell_key"]

log = logging.getLogger(__name__)

Spec = dict[str, Any]
Result = dict[str, Any]


def cell_key(spec: Spec) -> str:
    """(1): a short digest of the canonical JSON of ``spec``."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CellRate:
    """(5): how many cells this call ran, in how many wall seconds, with how many processes."""

    ran: int
    reused: int
    seconds: float
    workers: int

    @property
    def per_hour(self) -> float | None:
        return self.ran * 3600.0 / self.seconds if self.ran and self.seconds > 0 else None


def _one_thread() -> None:
    torch.set_num_threads(1)


def _timed(run_cell: Callable[[Spec], Result], spec: Spec) -> tuple[Result, float]:
    t0 = time.perf_counter()
    result = run_cell(spec)
    return result, time.perf_counter() - t0


def _timed_named(
    run_cell: Callable[[Spec], Result], cell: tuple[str, Spec]
) -> tuple[str, Result, float]:
    name, spec = cell
    return (name, *_timed(run_cell, spec))


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises SystemExit in this (main) thread, so the pool's ``with``
    block terminates its processes instead of the process dying and leaving them running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    before = signal.signal(signal.SIGTERM, _stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


class CellStore:
    """The ``cells/`` folder of one study: steps (2)-(5) of the module docstring."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder) / "cells"
        self.last_rate: CellRate | None = None

    def path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"cell name must be a plain file name; got {name!r}")
        return self.folder / f"{name}.json"

    def get(self, name: str, spec: Spec) -> Result | None:
        """(3): the stored result of ``name`` if it was run with this very spec."""
        path = self.path(name)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            log.warning("cell file %s is not valid JSON; the cell runs again", path)
            return None
        if record.get("key") != cell_key(spec):
            log.info("cell %s was run with another spec; it runs again", name)
            return None
        return record["result"]

    def put(self, name: str, spec: Spec, result: Result, seconds: float) -> None:
        """(2): write the cell's file atomically (a half-written file never exists)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"name": name, "key": cell_key(spec), "spec": spec, "result": result}
        record["seconds"] = round(seconds, 3)
        path = self.path(name)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        tmp.replace(path)

    def run_all(
        self,
        cells: Sequence[tuple[str, Spec]],
        run_cell: Callable[[Spec], Result],
        workers: int = 1,
    ) -> dict[str, Result]:
        """(4)-(5): every cell's result, running only those without a stored one."""
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
        names = [name for name, _ in cells]
        if len(set(names)) != len(names):
            raise ValueError("cell names must be unique within a study")
        results: dict[str, Result] = {}
        todo: list[tuple[str, Spec]] = []
        for name, spec in cells:
            stored = self.get(name, spec)
            if stored is None:
                todo.append((name, spec))
            else:
                results[name] = stored
        log.info("%d cells stored, %d to run (%d processes)", len(results), len(todo), workers)
        t0 = time.perf_counter()
        if workers == 1 or len(todo) <= 1:
            for name, spec in todo:
                result, seconds = _timed(run_cell, spec)
                self.put(name, spec, result, seconds)
                results[name] = result
        else:
            specs = dict(todo)
            context = multiprocessing.get_context("spawn")
            # leaving the block, normally or by an exception (a failed cell, Ctrl-C, SIGTERM),
            # terminates the pool's processes: none keeps computing a cell nobody will read
            with _sigterm_raises(), context.Pool(workers, initializer=_one_thread) as pool:
                done = pool.imap_unordered(functools.partial(_timed_named, run_cell), todo)
                for name, result, seconds in done:
                    self.put(name, specs[name], result, seconds)
                    results[name] = result
        ran = len(todo)
        self.last_rate = CellRate(ran, len(cells) - ran, time.perf_counter() - t0, workers)
        return {name: results[name] for name in names}
