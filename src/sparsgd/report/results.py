"""What one experiment run leaves in its folder: ``results.json``, read back by the report.

    DIR/results.json      Results: what ran (experiment, mode, seeds, config, command, machine,
                          wall seconds), its tables, the figures it drew, its findings and the
                          raw series the figures were drawn from
    DIR/*.png             the figures (file names relative to DIR)
    DIR/runs/...          per-run folders (log.jsonl, summary.json) of the trainers it called

A *finding* is one claim of the papers set beside what this run measured:

    Finding(claim="delta stays below 1", verdict="agrees", evidence="max per-epoch mean 0.98")

``verdict`` is one of :data:`VERDICTS`; the experiment decides it from its numbers by a rule
it states in ``rule`` (older results: in ``evidence``), so the report never invents a
conclusion; ``reduced`` says what the run cut from the paper's setup (models, budget, seeds).

Entries of ``data`` that the report reads itself:

    data[CELLS_PER_HOUR]  runs per hour of the study (a number, or a dict with "per_hour", or
                          with "ran" and "seconds": the fields of experiments.cells.CellRate)

A figure drawn with :func:`sparsgd.report.plots.draw_figure` records its panels in
``Figure.drawing``, so the report can draw it again when its PNG is absent.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CELLS_PER_HOUR",
    "RESULTS_FILE",
    "VERDICTS",
    "Figure",
    "Finding",
    "Results",
    "Table",
    "load_results",
]

RESULTS_FILE = "results.json"
CELLS_PER_HOUR = "cells_per_hour"  # key of Results.data: the study's runs per hour
VERDICTS = ("agrees", "partly agrees", "disagrees", "inconclusive")


@dataclass
class Table:
    """A table of the report: ``rows`` hold plain numbers and strings, one per column."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table {self.name!r} row {i} has {len(row)} cells; expected "
                    f"{len(self.columns)} (columns {self.columns})"
                )


@dataclass
class Figure:
    """A PNG the experiment drew; ``file`` is relative to the results folder."""

    file: str
    caption: str
    drawing: dict[str, Any] = field(default_factory=dict)  # panels and options, to redraw it


@dataclass
class Finding:
    """One claim of the papers, the verdict of this run, and the numbers behind it."""

    claim: str
    verdict: str
    evidence: str
    rule: str = ""  # how the verdict follows from the numbers (printed beside it)
    reduced: str = ""  # what this run reduced against the paper's setup, and why

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}; got {self.verdict!r}")


@dataclass
class Results:
    """Everything ``results.json`` holds (see the module docstring)."""

    experiment: str
    title: str
    mode: str  # "smoke" | "full"
    seeds: list[int]
    config: dict[str, Any]
    command: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    started: str = ""
    wall_seconds: float = 0.0
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        """The table called ``name`` (ValueError listing the names when absent)."""
        for t in self.tables:
            if t.name == name:
                return t
        raise ValueError(f"no table {name!r}; tables: {[t.name for t in self.tables]}")

    def to_dict(self) -> dict[str, Any]:
        return _finite_json(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Results:
        d = dict(d)
        d["tables"] = [Table(**t) for t in d.get("tables", [])]
        d["figures"] = [Figure(**f) for f in d.get("figures", [])]
        d["findings"] = [Finding(**f) for f in d.get("findings", [])]
        return cls(**d)

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/results.json`` (written whole, then renamed: never half a file)."""
        path = Path(folder) / RESULTS_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(path)
        return path


def load_results(folder: str | Path) -> Results:
    """Read ``folder/results.json``; a missing or broken file names the folder."""
    path = Path(folder) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} holds no {RESULTS_FILE}; run `sparsgd experiment run NAME --out {folder}`"
        )
    try:
        return Results.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{path} is not a results file of sparsgd experiments: {err}") from None


def _finite_json(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value
