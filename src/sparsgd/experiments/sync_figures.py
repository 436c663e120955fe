"""Small multiples of the S-SGD studies: test accuracy against epochs, bytes and time.

One row of panels per group (a network, or a density), one column per x axis:

    epoch                   evaluation points (epoch ends)
    bytes sent per rank     mean over ranks, cumulative, log axis
    modelled seconds        measured compute and selection + alpha-beta 1 GbE aggregation

Each line is one arm (variant, recipe; a variant has one colour in every panel, the recipe
sets the line style): at every evaluation the mean over seeds of the test accuracy, at x = the
mean over seeds of that evaluation's x, drawn over every seed's own curve (thin, faint). A seed
that diverged stops where its records stop; later points average the seeds still running.
The figure records its panels in results.json (:func:`sparsgd.report.plots.draw_figure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsgd.experiments.spread import mean_std
from sparsgd.report.plots import Panel, Series, draw_figure
from sparsgd.report.results import Figure

__all__ = ["RECIPE_STYLES", "X_AXES", "ArmCurves", "draw_study"]

X_AXES = (  # (curve key, axis label, log axis)
    ("epoch", "epoch", False),
    ("bytes_sent", "bytes sent per rank", True),
    ("modelled_s", "modelled seconds (1 GbE)", False),
)
RECIPE_STYLES = {"authors": "-", "momentum-free": "--"}  # any other recipe: dotted


@dataclass(frozen=True)
class ArmCurves:
    """The seeds' results of one arm, and its legend label."""

    label: str
    recipe: str
    results: list[dict[str, Any]]


def _series(arm: ArmCurves, x_key: str) -> Series | None:
    """Mean over seeds at each evaluation index, every seed's curve beneath it (docstring)."""
    curves = [r["curves"] for r in arm.results]
    longest = max((len(c["epoch"]) for c in curves), default=0)
    xs, ys = [], []
    for i in range(longest):
        points = [
            (c[x_key][i], c["test_accuracy"][i])
            for c in curves
            if i < len(c[x_key]) and c[x_key][i] is not None and c["test_accuracy"][i] is not None
        ]
        if not points:
            continue
        xs.append(mean_std([p[0] for p in points])[0])
        ys.append(mean_std([p[1] for p in points])[0])
    if not xs:
        return None
    runs = [(c[x_key], c["test_accuracy"]) for c in curves]
    return Series(arm.label, xs, ys, style=RECIPE_STYLES.get(arm.recipe, ":"), runs=runs)


def _panels(title: str, arms: list[ArmCurves], target: float | None) -> list[Panel]:
    panels = []
    for x_key, x_label, log in X_AXES:
        series = [s for s in (_series(a, x_key) for a in arms) if s is not None]
        panels.append(
            Panel(
                f"{title}: test accuracy",
                x_label,
                "test accuracy",
                series,
                logx=log,
                hline=None if target is None else (target, f"target {target:g}"),
            )
        )
    return panels


def draw_study(
    folder: Path, file: str, caption: str, groups: list[tuple[str, list[ArmCurves], float | None]]
) -> Figure:
    """One row per ``(group title, arms, target accuracy)``, one column per x axis."""
    panels = [p for name, arms, target in groups for p in _panels(name, arms, target)]
    return draw_figure(folder, file, caption, panels, ncols=len(X_AXES), sharey=True)
