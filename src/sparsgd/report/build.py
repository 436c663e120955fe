"""Gather the results of several experiment folders into one markdown report.

    text = build_report(["docs/study_results"], out="docs/results.md", command="sparsgd ...")

(1) find the folders: each one given holds ``results.json``, or is a parent (such as
    ``docs/study_results``) whose sub-folders holding one are taken in name order;
(2) read each ``results.json``, and nothing else: the run folders (``runs/...``) a study
    wrote need not exist, so committed result folders (``results.json``, ``cells/``, the
    PNGs) regenerate the report on any machine without running anything;
(3) with ``out``: put each folder's figures next to the report, in ``<stem>_figures/<name>/``,
    so that the report and its figures move together: copied from the folder, or drawn again
    from the panels ``results.json`` recorded (``Figure.drawing``) when the PNG is absent or
    ``redraw`` is set; PNGs an earlier report left there and no longer listed are removed.
    Without ``out`` the links point into the result folders themselves;
(4) write: how the report was made, one row per experiment (mode, seeds, minutes, load, runs
    per hour) with the commands that produced them, the papers' claims one by one (verdict,
    rule, evidence, what was reduced), then each experiment's section.

The text depends on the folders only (no clock), so unchanged folders give the same file:
``sparsgd report --check`` relies on it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from sparsgd.report.markdown import (
    CLAIM_COLUMNS,
    SMOKE_VERDICT,
    claim_row,
    markdown_table,
    results_section,
    runs_per_hour,
)
from sparsgd.report.plots import redraw as redraw_figure
from sparsgd.report.results import RESULTS_FILE, Figure, Results, load_results

__all__ = ["build_report", "result_folders"]


def result_folders(folders: Sequence[str | Path]) -> list[Path]:
    """(1): the folders holding ``results.json``; a parent stands for its sub-folders."""
    found = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder; expected a results folder")
        if (folder / RESULTS_FILE).is_file():
            found.append(folder)
            continue
        children = sorted(p for p in folder.iterdir() if (p / RESULTS_FILE).is_file())
        if not children:
            raise FileNotFoundError(
                f"{folder} holds no {RESULTS_FILE}, nor do its sub-folders; run "
                f"`sparsgd experiment run NAME --out {folder}`"
            )
        found += children
    return found


def _place_figure(fig: Figure, folder: Path, target: Path, redraw: bool) -> None:
    """(3) for one figure: copy it, or draw it again from its recorded panels."""
    source = folder / fig.file
    if source.is_file() and not (redraw and fig.drawing):
        shutil.copy2(source, target / fig.file)
        return
    if not fig.drawing:
        raise FileNotFoundError(
            f"{folder}: results.json lists {fig.file}, not found, and records no panels to "
            "draw it again from"
        )
    try:
        redraw_figure(target / fig.file, fig.drawing)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{folder}: the drawing results.json recorded for {fig.file} is unusable: {err}"
        ) from err


def _figure_prefixes(
    results: list[Results], folders: list[Path], out: Path | None, write: bool, redraw: bool
) -> list[str]:
    """(3): where each experiment's figures are linked from; puts them there when ``write``."""
    prefixes = []
    used: set[str] = set()
    for r, folder in zip(results, folders, strict=True):
        if out is None:
            missing = [f.file for f in r.figures if not (folder / f.file).is_file()]
            if missing:
                raise FileNotFoundError(
                    f"{folder}: results.json lists {', '.join(missing)}, not found; with "
                    "--out FILE the report draws them again where their panels were recorded"
                )
            prefixes.append(str(folder))
            continue
        name, n = r.experiment, 2
        while name in used:  # the same experiment twice: keep both sets of figures
            name, n = f"{r.experiment}-{n}", n + 1
        used.add(name)
        relative = f"{out.stem}_figures/{name}"
        prefixes.append(relative)
        if not write:
            continue
        target = out.parent / relative
        target.mkdir(parents=True, exist_ok=True)
        listed = {f.file for f in r.figures}
        for stale in target.glob("*.png"):
            if stale.name not in listed:
                stale.unlink()
        for fig in r.figures:
            _place_figure(fig, folder, target, redraw)
    return prefixes


def _overview(results: list[Results], expected: Sequence[str]) -> str:
    rows = [
        [
            r.experiment,
            r.mode,
            len(r.seeds),
            _minutes(r),
            _load(r),
            runs_per_hour(r),
            r.started,
        ]
        for r in results
    ]
    columns = ["experiment", "mode", "seeds", "minutes", "load / cores", "runs per hour"]
    text = markdown_table([*columns, "started (UTC)"], rows)
    commands = [r.command for r in results if r.command]
    if commands:
        text += "\n\nThe commands that produced them:\n\n```bash\n" + "\n".join(commands)
        text += "\n```"
    missing = [name for name in expected if name not in {r.experiment for r in results}]
    if missing:
        text += (
            "\n\nNot in this report (no results folder given): "
            + ", ".join(f"`{name}`" for name in missing)
            + "."
        )
    return text


def _minutes(r: Results) -> str:
    minutes = f"{r.wall_seconds / 60:.1f}"
    if "--reuse" in r.command.split():
        return f"{minutes} (--reuse: finished runs read back, not rerun)"
    return minutes


def _load(r: Results) -> str | None:
    """The 1-minute load average at the start beside the core count: '4.96 / 2'."""
    load = r.machine.get("load_average_1min")
    return None if load is None else f"{load} / {r.machine.get('cores')}"


def _claims(results: list[Results]) -> str:
    """Every claim of the full-mode results, one row each; smoke results are only named."""
    rows = [
        [r.experiment, *claim_row(f, r.mode)]
        for r in results
        if r.mode == "full"
        for f in r.findings
    ]
    smoke = [r.experiment for r in results if r.mode == "smoke" and r.findings]
    text = (
        markdown_table(["experiment", *CLAIM_COLUMNS], rows)
        if rows
        else "No full-mode result holds a finding yet."
    )
    if smoke:
        text += (
            f"\n\nLeft out here because they ran in smoke mode only ({SMOKE_VERDICT}): "
            + ", ".join(f"`{name}`" for name in smoke)
            + "."
        )
    return text


def build_report(
    folders: Sequence[str | Path],
    out: str | Path | None = None,
    command: str = "",
    expected: Sequence[str] = (),
    *,
    redraw: bool = False,
    write: bool = True,
) -> str:
    """Steps (1)-(4); writes ``out`` (and its figures) when given and ``write``; returns the
    markdown.

    ``expected``: the experiment names a complete report would hold (``sparsgd report`` passes
    the registry's); those without a folder are listed as missing. ``redraw``: draw every
    figure whose panels were recorded again instead of copying its PNG.
    """
    if not folders:
        raise ValueError("build_report needs at least one results folder; got none")
    paths = result_folders(folders)  # (1)
    results = [load_results(p) for p in paths]  # (2)
    out_path = None if out is None else Path(out)
    prefixes = _figure_prefixes(results, paths, out_path, write, redraw)  # (3)
    lines = [  # (4)
        "# Results of the papers' studies",
        "",
        f"Generated by `{command or 'sparsgd report'}` from "
        + ", ".join(f"`{p}`" for p in paths)
        + ", without running anything: every number below is read from those folders' "
        f"{RESULTS_FILE}. Each section names the command that produced its numbers and the "
        "machine it ran on. Smoke-mode sections only show that the code runs; they are not "
        "results.",
        "",
        "## Experiments in this report",
        "",
        _overview(results, expected),
        "",
        "## The papers' claims, one by one",
        "",
        _claims(results),
        "",
    ]
    for r, prefix in zip(results, prefixes, strict=True):
        lines.append(results_section(r, prefix))
    text = "\n".join(lines)
    if out_path is not None and write:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(text)
    return text
