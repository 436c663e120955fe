"""Markdown for one experiment's results: what ran, its findings, tables and figures.

    text = results_section(results, figure_prefix="results_figures/gtopk-delta")

Numbers are printed with :func:`cell` (4 significant digits, "n/a" for a missing value).
A smoke-mode result is marked as such in its heading and first line: its numbers only show
that the code runs and must not be read as a result.
"""

from __future__ import annotations

import math
from typing import Any

from sparsgd.report.machine import machine_line
from sparsgd.report.results import Finding, Results, Table

__all__ = ["cell", "findings_table", "markdown_table", "results_section"]

SIGNIFICANT = 4  # digits printed for floats in tables


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


def findings_table(findings: list[Finding], experiment: str | None = None) -> str:
    columns = (["experiment"] if experiment else []) + ["claim", "verdict here", "evidence"]
    first = [experiment] if experiment else []
    rows = [[*first, f.claim, f.verdict, f.evidence] for f in findings]
    return markdown_table(columns, rows)


def _table(t: Table) -> str:
    parts = [f"**{t.title}**", "", markdown_table(t.columns, t.rows)]
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
    if r.command:
        lines.append(f"- command: `{r.command}`")
    return lines


def results_section(r: Results, figure_prefix: str) -> str:
    """The markdown section of ``r``; figure links are ``figure_prefix/<file>``."""
    lines = _header(r)
    if r.findings:
        lines += ["", "### Claims", "", findings_table(r.findings)]
    for t in r.tables:
        lines += ["", _table(t)]
    for fig in r.figures:
        link = f"{figure_prefix}/{fig.file}" if figure_prefix else fig.file
        lines += ["", f"![{fig.caption}]({link})", "", f"*{fig.caption}*"]
    if r.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in r.notes]
    return "\n".join(lines) + "\n"
