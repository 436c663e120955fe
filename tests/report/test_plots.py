"""Figures are real PNGs of the grid's size; small multiples compare: shared y, seeds, colours."""

from __future__ import annotations

import struct

import matplotlib.pyplot as plt
import pytest
from matplotlib.collections import PolyCollection

from sparsgd.report import plots
from sparsgd.report.plots import Panel, Series, draw, draw_figure, redraw
from sparsgd.report.results import Results, load_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# one panel is 5.0 x 3.6 inches at 110 dots per inch: 550 x 396 pixels, worked out by hand
PANEL_PX = (550, 396)


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (bytes 16-24, big-endian)."""
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib figures draw() made, kept open for inspection instead of closed."""
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    yield figures
    monkeypatch.undo()
    for fig in figures:
        plt.close(fig)


def _two_panels(**series_kwargs) -> list[Panel]:
    return [
        Panel("small", "epoch", "acc", [Series("a", [1, 2, 3], [0.1, 0.2, 0.3], **series_kwargs)]),
        Panel("large", "epoch", "acc", [Series("a", [1, 2, 3], [5.0, 6.0, 7.0], **series_kwargs)]),
    ]


def test_draw_writes_a_png(tmp_path):
    path = draw(
        tmp_path / "a" / "b.png",
        [
            Panel(
                "lines",
                "x",
                "y",
                [Series("s", [1, 2, 3], [1.0, float("nan"), 2.0])],
                hline=(1.0, "one"),
                logy=True,
            ),
            Panel(
                "bars",
                "x",
                "y",
                [Series("a", [0, 1], [1, 2], kind="bar"), Series("b", [0, 1], [2, 1], kind="bar")],
            ),
        ],
    )
    assert path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    ("panels", "ncols", "grid"), [(1, 2, (1, 1)), (4, 2, (2, 2)), (5, 3, (3, 2))]
)
def test_pixel_size_follows_the_grid(tmp_path, panels, ncols, grid):
    series = [Series("s", [1, 2], [1.0, 2.0], runs=[([1, 2], [0.9, 2.1])])]
    path = draw(
        tmp_path / "g.png",
        [Panel(f"p{i}", "x", "y", series) for i in range(panels)],
        ncols=ncols,
        sharey=True,
    )
    columns, rows = grid
    assert _png_size(path.read_bytes()) == (PANEL_PX[0] * columns, PANEL_PX[1] * rows)


def test_sharey_gives_every_panel_the_same_y_axis(tmp_path, drawn):
    draw(tmp_path / "own.png", _two_panels())
    draw(tmp_path / "shared.png", _two_panels(), sharey=True)
    own, shared = ([ax.get_ylim() for ax in fig.axes] for fig in drawn)
    assert own[0] != own[1]  # each fits its own data: 0.1-0.3 against 5-7
    assert shared[0] == shared[1]
    assert [ax.get_ylabel() for ax in drawn[1].axes] == ["acc", ""]  # said once, by the ticks
    low, high = shared[0]
    assert low <= 0.1 and high >= 7.0  # one axis holds both panels' data


def test_runs_are_thin_faint_and_in_the_series_colour(tmp_path, drawn):
    runs = [([1, 2, 3], [0.1, 0.25, 0.3]), ([1, 2, 3], [0.1, 0.15, 0.3]), ([1, 2], [0.0, 0.2])]
    panel = Panel(
        "p",
        "x",
        "y",
        [
            Series("mean", [1, 2, 3], [0.1, 0.2, 0.3], std=[0.0, 0.05, 0.0], runs=runs),
            Series("other", [1, 2, 3], [0.3, 0.2, 0.1]),
        ],
    )
    draw(tmp_path / "r.png", [panel])
    (ax,) = drawn[0].axes
    lines = ax.get_lines()
    assert len(lines) == len(runs) + 2  # every seed, then the two means
    thin = [line for line in lines if line.get_linewidth() == plots.RUN_WIDTH]
    assert len(thin) == len(runs)
    mean = lines[len(runs)]
    assert mean.get_linewidth() == plots.MEAN_WIDTH
    assert all(line.get_color() == mean.get_color() for line in thin)
    assert all(line.get_alpha() == plots.RUN_ALPHA for line in thin)
    assert all(line.get_zorder() < mean.get_zorder() for line in thin)  # drawn under the mean
    assert lines[-1].get_color() != mean.get_color()
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert band.get_alpha() == plots.BAND_ALPHA
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["mean", "other"]  # band: no entry


def test_a_label_keeps_its_colour_and_one_legend_entry_across_panels(tmp_path, drawn):
    xs = [1.0, 2.0]
    panels = [
        Panel("first", "x", "y", [Series("dense", xs, xs), Series("gtopk", xs, xs, std=xs)]),
        Panel("second", "x", "y", [Series("dense", xs, xs), Series("gtopk", xs, xs, std=xs)]),
    ]
    draw(tmp_path / "same.png", panels)
    panels[1].series.reverse()  # the same labels in another order: each panel its own legend
    panels[1].series.append(Series("topk", xs, xs))
    draw(tmp_path / "other.png", panels)
    same, other = drawn
    (legend,) = same.legends  # one legend for the figure, each label once
    assert [t.get_text() for t in legend.get_texts()] == ["dense", "gtopk"]
    assert all(ax.get_legend() is None for ax in same.axes)
    assert not other.legends
    colour = {}
    for ax in other.axes:
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        for label, line in zip(texts, ax.get_lines(), strict=True):
            assert colour.setdefault(label, line.get_color()) == line.get_color()
    assert len(set(colour.values())) == 3


def test_a_recorded_figure_is_redrawn_identically_from_results_json(tmp_path):
    panels = [
        Panel(
            "acc",
            "epoch",
            "accuracy",
            [Series("a", [1, 2], [0.5, 0.75], std=[0.125, 0.25], runs=[([1, 2], [0.5, 0.5])])],
            hline=(0.5, "half"),
        ),
        Panel("loss", "epoch", "loss", [Series("a", [1, 2], [2.0, 1.0])], ymax=4.0),
    ]
    fig = draw_figure(tmp_path, "f.png", "a figure", panels, ncols=1, sharey=False)
    Results("e", "E", "full", [0], {}, figures=[fig]).save(tmp_path)
    back = load_results(tmp_path).figures[0]
    again = redraw(tmp_path / "again.png", back.drawing)
    assert again.read_bytes() == (tmp_path / "f.png").read_bytes()
    assert _png_size(again.read_bytes()) == (PANEL_PX[0], PANEL_PX[1] * 2)


def test_bad_series_options_and_empty_figure_are_refused(tmp_path):
    with pytest.raises(ValueError, match="equal lengths"):
        Series("s", [1, 2], [1.0])
    with pytest.raises(ValueError, match="kind must be"):
        Series("s", [1], [1.0], kind="pie")
    with pytest.raises(ValueError, match=r"run 1 has 2 x and 1 y values"):
        Series("s", [1], [1.0], runs=[([1], [1.0]), ([1, 2], [1.0])])
    with pytest.raises(ValueError, match="runs are drawn for lines only"):
        Series("s", [1], [1.0], kind="bar", runs=[([1], [1.0])])
    with pytest.raises(ValueError, match="at least one panel"):
        draw(tmp_path / "x.png", [])
    with pytest.raises(ValueError, match="ncols must be an integer >= 1; got 0"):
        draw(tmp_path / "x.png", _two_panels(), ncols=0)
    with pytest.raises(ValueError, match="legend must be one of"):
        draw(tmp_path / "x.png", _two_panels(), legend="top")
    mixed = _two_panels()
    mixed[1].logy = True
    with pytest.raises(ValueError, match=r"sharey=True needs every panel on the same y scale"):
        draw(tmp_path / "x.png", mixed, sharey=True)
