"""Markdown for one experiment's results: what ran, its findings, tables and figures.

    text = results_section(results, figure_prefix="results_figures/gtopk-delta")

Numbers are printed with :func:`cell` (4 significant digits, "n/a" for a missing value).
A smoke-mode result is marked as such in its heading and first line: its numbers only show
that the code runs and must not be read as a result, so wherever a verdict would stand (the
claims, a table cell holding a verdict word) it reads :data:`SMOKE_VERDICT` instead.

A claim is one row: the claim, the verdict, the rule the verdict follows from
(``Finding.rule``), the evidence, and what the run reduced against the paper
(``Finding.reduced``).
"""

from __future__ import annotations

import math
from typing import Any

from sparsgd.report.machine import machine_line
from sparsgd.report.results import CELLS_PER_HOUR, VERDICTS, Finding, Results, Table

__all__ = [
    "CLAIM_COLUMNS",
    "SMOKE_VERDICT",
    "cell",
    "claim_row",
    "findings_table",
    "markdown_table",
    "results_section",
    "runs_per_hour",
    "shown_verdict",
]

SIGNIFICANT = 4  # digits printed for floats in tables
SMOKE_VERDICT = "smoke run: no verdict"  # what a smoke run shows where a verdict would be
NO_RULE = "stated in the evidence"  # a finding from before Finding.rule existed
NOT_STATED = "not stated"  # a finding that does not say what it reduced
CLAIM_COLUMNS = ("claim", "verdict here", "rule", "evidence", "reduced against the paper")


def cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits, None as n/a, '|' escaped."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.{SIGNIFICANT - 1}e}"
        return f"{value:.{SIGNIFICANT}g}"
    return str(value).replace("|", "\\|")


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    head = "| " + " | ".join(cell(c) for c in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def shown_verdict(verdict: str, mode: str) -> str:
    """The verdict as printed: a smoke run has none."""
    return SMOKE_VERDICT if mode == "smoke" else verdict


def claim_row(f: Finding, mode: str) -> list[str]:
    """Claim, verdict (none in smoke mode), rule, evidence, what was reduced: CLAIM_COLUMNS."""
    verdict = shown_verdict(f.verdict, mode)
    return [f.claim, verdict, f.rule or NO_RULE, f.evidence, f.reduced or NOT_STATED]


def findings_table(
    findings: list[Finding], experiment: str | None = None, mode: str = "full"
) -> str:
    """One row per claim (:func:`claim_row`), after the experiment's name when given."""
    columns = (["experiment"] if experiment else []) + list(CLAIM_COLUMNS)
    first = [experiment] if experiment else []
    return markdown_table(columns, [[*first, *claim_row(f, mode)] for f in findings])


def runs_per_hour(r: Results) -> str | None:
    """The study's runs per hour from ``data["cells_per_hour"]``; None when it has none."""
    rate = r.data.get(CELLS_PER_HOUR)
    if isinstance(rate, dict):
        if rate.get("per_hour") is not None:
            rate = rate["per_hour"]
        elif rate.get("ran") and rate.get("seconds"):
            rate = rate["ran"] * 3600.0 / rate["seconds"]
        else:
            return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate):
        return None
    return f"{rate:.3g}"


def _table(t: Table, mode: str) -> str:
    rows = t.rows
    if mode == "smoke":  # a verdict word in a table is a verdict too
        rows = [[SMOKE_VERDICT if v in VERDICTS else v for v in row] for row in rows]
    parts = [f"**{t.title}**", "", markdown_table(t.columns, rows)]
    if t.note:
        parts += ["", t.note]
    return "\n".join(parts)


def _header(r: Results) -> list[str]:
    smoke = r.mode == "smoke"
    heading = f"## {r.title} (`{r.experiment}`)" + (" — SMOKE RUN, NOT A RESULT" if smoke else "")
    lines = [heading, ""]
    if smoke:
        lines += [
            "> Smoke mode: a tiny configuration that only shows the code runs end to end. "
            "Its numbers say nothing about the papers' claims.",
            "",
        ]
    minutes = r.wall_seconds / 60
    lines += [
        f"- mode: **{r.mode}**, seeds {r.seeds}, ran {minutes:.1f} min (started {r.started})",
        f"- machine: {machine_line(r.machine)}",
    ]
    rate = runs_per_hour(r)
    if rate is not None:
        lines.append(f"- runs per hour (as the study measured them): {rate}")
    if r.command:
        lines.append(f"- command: `{r.command}`")
    return lines


def results_section(r: Results, figure_prefix: str) -> str:
    """The markdown section of ``r``; figure links are ``figure_prefix/<file>``."""
    lines = _header(r)
    if r.findings:
        lines += ["", "### Claims", "", findings_table(r.findings, mode=r.mode)]
    for t in r.tables:
        lines += ["", _table(t, r.mode)]
    for fig in r.figures:
        link = f"{figure_prefix}/{fig.file}" if figure_prefix else fig.file
        lines += ["", f"![{fig.caption}]({link})", "", f"*{fig.caption}*"]
    if r.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in r.notes]
    return "\n".join(lines) + "\n"
