"""PNG figures made of panels of curves, drawn with matplotlib's Agg backend (no display).

    draw("out/curves.png", [
        Panel("LeNet-5: train loss", "epoch", "loss", [Series("dense", xs, ys), ...]),
        Panel("LeNet-5: accuracy", "epoch", "test accuracy", [...], hline=(1.0, "1")),
    ])

A :class:`Series` with ``std`` gets a band of mean ± std (the spread over seeds); one with
``kind="bar"`` is drawn as bars (several bar series in one panel sit side by side).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; must precede pyplot
import matplotlib.pyplot as plt

__all__ = ["Panel", "Series", "draw"]

PANEL_WIDTH_IN, PANEL_HEIGHT_IN = 5.0, 3.6  # inches per panel
DPI = 110  # small files that still read well on a screen
BAND_ALPHA = 0.2  # opacity of the mean ± std band
BAR_SPAN = 0.8  # fraction of the unit slot that a group of side-by-side bars fills


@dataclass
class Series:
    """One curve (or set of bars) of a panel."""

    label: str
    x: list[float]
    y: list[float]
    std: list[float] | None = None
    kind: str = "line"  # "line" | "bar"
    style: str = "-"  # matplotlib line style for lines

    def __post_init__(self) -> None:
        if self.kind not in ("line", "bar"):
            raise ValueError(f"kind must be 'line' or 'bar'; got {self.kind!r}")
        if len(self.x) != len(self.y) or (self.std is not None and len(self.std) != len(self.y)):
            raise ValueError(
                f"series {self.label!r}: x, y (and std) must have equal lengths; got "
                f"{len(self.x)}, {len(self.y)}, {None if self.std is None else len(self.std)}"
            )


@dataclass
class Panel:
    """One set of axes."""

    title: str
    xlabel: str
    ylabel: str
    series: list[Series] = field(default_factory=list)
    logx: bool = False
    logy: bool = False
    hline: tuple[float, str] | None = None  # (y, label): a dashed reference line
    ymax: float | None = None  # cut the y axis here (a diverged curve would flatten the rest);
    # a linear axis then runs from 0: meant for non-negative values (losses, counts)


def _ok(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _line(ax, s: Series) -> None:
    keep = [i for i, (x, y) in enumerate(zip(s.x, s.y, strict=True)) if _ok(x) and _ok(y)]
    xs, ys = [s.x[i] for i in keep], [s.y[i] for i in keep]
    (handle,) = ax.plot(xs, ys, s.style, label=s.label, marker="." if len(xs) < 30 else None)
    if s.std is not None and keep:
        ds = [s.std[i] if _ok(s.std[i]) else 0.0 for i in keep]
        lo = [y - d for y, d in zip(ys, ds, strict=True)]
        hi = [y + d for y, d in zip(ys, ds, strict=True)]
        ax.fill_between(xs, lo, hi, alpha=BAND_ALPHA, color=handle.get_color())


def _bars(ax, bars: list[Series]) -> None:
    width = BAR_SPAN / len(bars)
    for i, s in enumerate(bars):
        offset = (i - (len(bars) - 1) / 2) * width
        ax.bar([x + offset for x in s.x], s.y, width=width, yerr=s.std, label=s.label)


def _panel(ax, panel: Panel) -> None:
    for s in panel.series:
        if s.kind == "line":
            _line(ax, s)
    bars = [s for s in panel.series if s.kind == "bar"]
    if bars:
        _bars(ax, bars)
    if panel.hline is not None:
        ax.axhline(panel.hline[0], color="black", linestyle="--", linewidth=1, label=panel.hline[1])
    if panel.logx:
        ax.set_xscale("log", base=2)
    if panel.logy:
        ax.set_yscale("log")
    if panel.ymax is not None:  # linear axes then start at 0: for losses and counts
        ax.set_ylim(top=panel.ymax) if panel.logy else ax.set_ylim(0.0, panel.ymax)
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.grid(True, alpha=0.3)
    if panel.series:
        ax.legend(fontsize=7)


def draw(path: str | Path, panels: list[Panel], ncols: int = 2, title: str = "") -> Path:
    """Draw ``panels`` on a grid of ``ncols`` columns into the PNG ``path``; returns it."""
    if not panels:
        raise ValueError("draw needs at least one panel; got none")
    ncols = max(1, min(ncols, len(panels)))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(PANEL_WIDTH_IN * ncols, PANEL_HEIGHT_IN * nrows), squeeze=False
    )
    for ax, panel in zip(axes.flat, panels, strict=False):
        _panel(ax, panel)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
