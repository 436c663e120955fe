"""Markdown of one experiment: claims with their rule and what was reduced; smoke shows none."""

from __future__ import annotations

import pytest

from sparsgd.report.markdown import (
    SMOKE_VERDICT,
    cell,
    findings_table,
    markdown_table,
    results_section,
    runs_per_hour,
)
from sparsgd.report.results import VERDICTS, Finding, Results, Table

FINDING = Finding(
    claim="gTop-k converges like dense",
    verdict="partly agrees",
    evidence="lenet5: -0.004 [-0.009, +0.001]",
    rule="agrees if the 95% t interval of accuracy - dense lies above -0.01",
    reduced="LeNet-5 instead of VGG-16; 3 seeds",
)


def _results(mode: str, **kwargs) -> Results:
    return Results(
        "gtopk-convergence",
        "Convergence",
        mode,
        [0, 1, 2],
        {},
        command="sparsgd experiment run gtopk-convergence --out X",
        findings=[FINDING, Finding("delta stays below 1", "agrees", "max 0.98")],
        tables=[Table("cells", "Per cell", ["cell", "verdict"], [["lenet5", "disagrees"]])],
        **kwargs,
    )


def test_cells_and_tables():
    assert cell(None) == "n/a"
    assert cell(0.123456) == "0.1235"
    assert cell(12345678.0) == "1.235e+07"
    assert cell("a|b") == "a\\|b"
    assert markdown_table(["a"], [[1]]) == "| a |\n| --- |\n| 1 |"


def test_a_claim_is_one_row_with_its_rule_and_what_was_reduced():
    lines = findings_table([FINDING]).splitlines()
    assert lines[0] == "| claim | verdict here | rule | evidence | reduced against the paper |"
    assert lines[2] == (
        "| gTop-k converges like dense | partly agrees | agrees if the 95% t interval of "
        "accuracy - dense lies above -0.01 | lenet5: -0.004 [-0.009, +0.001] | LeNet-5 instead "
        "of VGG-16; 3 seeds |"
    )
    assert len(lines) == 3


def test_a_finding_without_rule_or_reduced_says_so():
    (row,) = findings_table([Finding("c", "agrees", "e")], experiment="x").splitlines()[2:]
    assert row == "| x | c | agrees | stated in the evidence | e | not stated |"


def test_a_full_section_shows_verdicts():
    text = results_section(_results("full"), "figs")
    assert "| gTop-k converges like dense | partly agrees |" in text
    assert "| delta stays below 1 | agrees |" in text
    assert "| lenet5 | disagrees |" in text
    assert SMOKE_VERDICT not in text


def test_a_smoke_section_shows_no_verdict_anywhere():
    text = results_section(_results("smoke"), "figs")
    assert "SMOKE RUN, NOT A RESULT" in text
    assert text.count(f"| {SMOKE_VERDICT} |") == 3  # two claims and the table's cell
    for verdict in VERDICTS:
        assert f"| {verdict} |" not in text
    assert "| agrees if the 95% t interval" in text  # the rule is still shown


@pytest.mark.parametrize(
    ("rate", "shown"),
    [
        (42.0, "42"),
        ({"per_hour": 123.456}, "123"),
        ({"ran": 30, "reused": 10, "seconds": 1800.0, "workers": 2}, "60"),  # 30 cells in 0.5 h
        ({"ran": 0, "reused": 40, "seconds": 0.5, "workers": 1}, None),  # nothing ran: no rate
        (None, None),
        ("fast", None),
    ],
)
def test_runs_per_hour_from_the_study_data(rate, shown):
    r = _results("full", data={"cells_per_hour": rate})
    assert runs_per_hour(r) == shown
    line = f"- runs per hour (as the study measured them): {shown}"
    assert (line in results_section(r, "")) == (shown is not None)


def test_runs_per_hour_absent():
    assert runs_per_hour(_results("full")) is None
