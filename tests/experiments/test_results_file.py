"""results.json: what is written is read back, and malformed content is refused by name."""

from __future__ import annotations

import json
import math

import pytest

from sparsgd.report.results import (
    RESULTS_FILE,
    Figure,
    Finding,
    Results,
    Table,
    load_results,
)


def _results() -> Results:
    return Results(
        experiment="demo",
        title="Demo",
        mode="smoke",
        seeds=[0, 1],
        config={"density": 0.01},
        tables=[Table("t", "A table", ["a", "b"], [[1, 2.5], ["x", None]], "note")],
        figures=[Figure("f.png", "a figure")],
        findings=[Finding("a claim", "agrees", "numbers")],
        data={"curve": [1.0, math.nan, math.inf]},
    )


def test_round_trip(tmp_path):
    path = _results().save(tmp_path)
    assert path.name == RESULTS_FILE
    back = load_results(tmp_path)
    assert back.table("t").rows == [[1, 2.5], ["x", None]]
    assert back.figures[0].file == "f.png"
    assert back.findings[0].verdict == "agrees"
    assert back.seeds == [0, 1]


def test_non_finite_numbers_become_null(tmp_path):
    _results().save(tmp_path)
    raw = json.loads((tmp_path / RESULTS_FILE).read_text())  # strict JSON: no NaN tokens
    assert raw["data"]["curve"] == [1.0, None, None]


def test_table_rows_must_match_columns():
    with pytest.raises(ValueError, match=r"row 0 has 1 cells; expected 2"):
        Table("t", "T", ["a", "b"], [[1]])


def test_unknown_verdict_is_refused():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Finding("claim", "maybe", "evidence")


def test_missing_table_lists_the_names():
    with pytest.raises(ValueError, match=r"no table 'x'; tables: \['t'\]"):
        _results().table("x")


def test_missing_or_broken_file_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"holds no results\.json"):
        load_results(tmp_path)
    (tmp_path / RESULTS_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="is not a results file"):
        load_results(tmp_path)
