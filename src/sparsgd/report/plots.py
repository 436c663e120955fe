"""PNG figures made of panels of curves, drawn with matplotlib's Agg backend (no display).

    draw("out/curves.png", [
        Panel("LeNet-5: train loss", "epoch", "loss", [Series("dense", xs, ys), ...]),
        Panel("LeNet-5: accuracy", "epoch", "test accuracy", [...], hline=(1.0, "1")),
    ], sharey=False)

A :class:`Series` with ``std`` gets a band of mean ± std (the spread over seeds); one with
``runs`` gets every seed's own curve drawn thin and faint under its mean line; one with
``kind="bar"`` is drawn as bars (several bar series in one panel sit side by side).

Small multiples, made to be compared panel against panel:

- a label has one colour in every panel of a figure (in the order labels first appear);
- ``sharey=True`` gives every panel the same y axis;
- a series has one legend entry (its line together with its band); when every panel shows
  the same labels, one legend serves the whole figure (``legend="auto"``).

The figure is ``ncols * PANEL_WIDTH_IN`` by ``nrows * PANEL_HEIGHT_IN`` inches at ``DPI``:
its pixel size depends on the grid only. :func:`draw_figure` also records the panels in the
returned :class:`~sparsgd.report.results.Figure`, so that :func:`redraw` can draw it again
from ``results.json`` alone (``sparsgd report`` does, for a PNG that is absent).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; must precede pyplot
import matplotlib.pyplot as plt

from sparsgd.report.results import Figure

__all__ = ["Panel", "Series", "draw", "draw_figure", "redraw"]

PANEL_WIDTH_IN, PANEL_HEIGHT_IN = 5.0, 3.6  # inches per panel
DPI = 110  # small files that still read well on a screen
BAND_ALPHA = 0.25  # opacity of the mean ± std band: visible under two or three others
RUN_ALPHA, RUN_WIDTH = 0.35, 0.7  # per-seed curves: thin and faint, under the mean
MEAN_WIDTH = 1.8  # the mean line when per-seed curves are drawn under it
BAR_SPAN = 0.8  # fraction of the unit slot that a group of side-by-side bars fills
LEGEND_ROW_IN = 0.28  # height of one row of a figure-wide legend, inches
LEGENDS = ("auto", "panel", "figure")
SIGNIFICANT = 6  # digits kept of every number a recorded drawing holds


@dataclass
class Series:
    """One curve (or set of bars) of a panel."""

    label: str
    x: list[float]
    y: list[float]
    std: list[float] | None = None
    kind: str = "line"  # "line" | "bar"
    style: str = "-"  # matplotlib line style for lines
    runs: list[tuple[list[float], list[float]]] | None = None  # per seed (x, y), thin, under y
    color: str | None = None  # None: the figure's colour of this label

    def __post_init__(self) -> None:
        if self.kind not in ("line", "bar"):
            raise ValueError(f"kind must be 'line' or 'bar'; got {self.kind!r}")
        if len(self.x) != len(self.y) or (self.std is not None and len(self.std) != len(self.y)):
            raise ValueError(
                f"series {self.label!r}: x, y (and std) must have equal lengths; got "
                f"{len(self.x)}, {len(self.y)}, {None if self.std is None else len(self.std)}"
            )
        if self.runs is not None:
            if self.kind != "line":
                raise ValueError(f"series {self.label!r}: runs are drawn for lines only")
            self.runs = [(list(rx), list(ry)) for rx, ry in self.runs]
            for i, (rx, ry) in enumerate(self.runs):
                if len(rx) != len(ry):
                    raise ValueError(
                        f"series {self.label!r}: run {i} has {len(rx)} x and {len(ry)} y values; "
                        "expected equal lengths"
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


def _finite(xs: list, ys: list) -> tuple[list[float], list[float]]:
    keep = [(x, y) for x, y in zip(xs, ys, strict=True) if _ok(x) and _ok(y)]
    return [x for x, _ in keep], [y for _, y in keep]


FMT_COLOURS = "bgrcmykw"  # matplotlib's one-letter colours of a format string


def _colours(panels: list[Panel]) -> dict[str, str]:
    """Label -> colour, in the order labels first appear: the same label looks the same in
    every panel (beyond 10 labels, tab20; beyond 20, colours repeat)."""
    labels = list(dict.fromkeys(s.label for p in panels for s in p.series))
    if len(labels) <= 10:
        palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    else:
        palette = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors]
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _line(ax, s: Series, colour: str):
    """Per-seed runs (thin, faint), the band and the mean; returns the one legend handle."""
    if s.style[:1] in FMT_COLOURS:  # a colour in the style ("k--") wins over the label's
        colour = matplotlib.colors.to_hex(s.style[0])
    for rx, ry in s.runs or []:
        xs, ys = _finite(rx, ry)
        ax.plot(
            xs, ys, s.style.lstrip(FMT_COLOURS), color=colour, linewidth=RUN_WIDTH, alpha=RUN_ALPHA
        )
    keep = [i for i, (x, y) in enumerate(zip(s.x, s.y, strict=True)) if _ok(x) and _ok(y)]
    xs, ys = [s.x[i] for i in keep], [s.y[i] for i in keep]
    width = MEAN_WIDTH if s.runs else None
    marker = "." if len(xs) < 30 else None
    style = s.style.lstrip(FMT_COLOURS)
    (line,) = ax.plot(xs, ys, style, color=colour, linewidth=width, marker=marker, zorder=3)
    if s.std is None or not keep:
        return line
    ds = [s.std[i] if _ok(s.std[i]) else 0.0 for i in keep]
    lo = [y - d for y, d in zip(ys, ds, strict=True)]
    hi = [y + d for y, d in zip(ys, ds, strict=True)]
    band = ax.fill_between(xs, lo, hi, alpha=BAND_ALPHA, color=colour, linewidth=0)
    return (band, line)  # one legend entry: the line drawn over its band


def _bars(ax, bars: list[Series], colours: dict[str, str]) -> list:
    width = BAR_SPAN / len(bars)
    handles = []
    for i, s in enumerate(bars):
        offset = (i - (len(bars) - 1) / 2) * width
        xs = [x + offset for x in s.x]
        colour = s.color or colours[s.label]
        handles.append(ax.bar(xs, s.y, width=width, yerr=s.std, color=colour))
    return handles


def _panel(ax, panel: Panel, colours: dict[str, str]) -> dict[str, Any]:
    """Draw one panel; returns its legend entries, label -> handle."""
    entries: dict[str, Any] = {}
    for s in panel.series:
        if s.kind == "line":
            entries.setdefault(s.label, _line(ax, s, s.color or colours[s.label]))
    bars = [s for s in panel.series if s.kind == "bar"]
    for s, handle in zip(bars, _bars(ax, bars, colours) if bars else [], strict=True):
        entries.setdefault(s.label, handle)
    if panel.hline is not None:
        y, label = panel.hline
        entries[label] = ax.axhline(y, color="black", linestyle="--", linewidth=1)
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
    return entries


def _check(panels: list[Panel], ncols: int, sharey: bool, legend: str) -> None:
    if not panels:
        raise ValueError("draw needs at least one panel; got none")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be an integer >= 1; got {ncols!r}")
    if legend not in LEGENDS:
        raise ValueError(f"legend must be one of {LEGENDS}; got {legend!r}")
    if sharey and len({p.logy for p in panels}) > 1:
        raise ValueError(
            "sharey=True needs every panel on the same y scale; got logy "
            f"{[p.logy for p in panels]} for panels {[p.title for p in panels]}"
        )


def _figure_legend(entries: list[dict[str, Any]], legend: str) -> bool:
    """Whether one legend serves the figure: asked for, or every panel shows the same labels."""
    if legend != "auto":
        return legend == "figure"
    shown = [list(e) for e in entries if e]
    return len(shown) > 1 and all(labels == shown[0] for labels in shown)


def _share_y(axes, panels: list[Panel]) -> None:
    """One y axis: the largest ``ymax`` set, and the y label only where the ticks are."""
    if any(p.ymax is not None for p in panels):
        axes.flat[0].set_ylim(top=max(p.ymax for p in panels if p.ymax is not None))
    for row in axes:
        for ax in row[1:]:
            if ax.get_ylabel() == row[0].get_ylabel():
                ax.set_ylabel("")


def draw(
    path: str | Path,
    panels: list[Panel],
    ncols: int = 2,
    title: str = "",
    sharey: bool = False,
    legend: str = "auto",
) -> Path:
    """Draw ``panels`` on a grid of ``ncols`` columns into the PNG ``path``; returns it.

    ``sharey``: one y axis for every panel (its largest ``ymax`` when any is set).
    ``legend``: "panel" (one per panel), "figure" (one for all, below the grid) or "auto".
    """
    _check(panels, ncols, sharey, legend)
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    width, height = PANEL_WIDTH_IN * ncols, PANEL_HEIGHT_IN * nrows
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, sharey=sharey)
    colours = _colours(panels)
    entries = [_panel(ax, p, colours) for ax, p in zip(axes.flat, panels, strict=False)]
    if sharey:
        _share_y(axes, panels)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    bottom = 0.0
    if _figure_legend(entries, legend):
        union = {k: v for e in entries for k, v in e.items()}
        columns = min(len(union), 6)
        bottom = (LEGEND_ROW_IN * -(-len(union) // columns) + 0.1) / height
        fig.legend(list(union.values()), list(union), loc="lower center", ncol=columns)
    else:
        for ax, e in zip(axes.flat, entries, strict=False):
            if e:
                ax.legend(list(e.values()), list(e), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _compact(value: Any) -> Any:
    """``value`` with floats cut to SIGNIFICANT digits and non-finite ones as None."""
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT}g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_compact(v) for v in value]
    return value


def draw_figure(
    folder: str | Path,
    file: str,
    caption: str,
    panels: list[Panel],
    ncols: int = 2,
    title: str = "",
    sharey: bool = False,
    legend: str = "auto",
) -> Figure:
    """Draw ``folder/file`` as :func:`draw` does; its Figure records panels and options for
    :func:`redraw` (about 10 bytes of results.json per point: curves of thousands of points
    are better drawn with :func:`draw` alone, their PNG committed)."""
    draw(Path(folder) / file, panels, ncols=ncols, title=title, sharey=sharey, legend=legend)
    recorded = {
        "panels": [asdict(p) for p in panels],
        "ncols": ncols,
        "title": title,
        "sharey": sharey,
        "legend": legend,
    }
    return Figure(file=file, caption=caption, drawing=_compact(recorded))


def redraw(path: str | Path, drawing: dict[str, Any]) -> Path:
    """Draw again, into ``path``, a figure that :func:`draw_figure` recorded."""
    panels = []
    for p in drawing["panels"]:
        series = [Series(**s) for s in p["series"]]
        hline = None if p.get("hline") is None else tuple(p["hline"])
        panels.append(Panel(**{**p, "series": series, "hline": hline}))
    return draw(
        path,
        panels,
        ncols=drawing.get("ncols", 2),
        title=drawing.get("title", ""),
        sharey=drawing.get("sharey", False),
        legend=drawing.get("legend", "auto"),
    )
