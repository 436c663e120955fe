"""Smoke runs of the S-SGD studies: gtopk-convergence and gtopk-density.

Tiny data and budgets: they show the studies run end to end, resume from their cells and
claim nothing.
"""

from __future__ import annotations

import pytest
from smoke_checks import check_results_folder

from sparsgd.experiments.runner import run_experiment
from sparsgd.experiments.sync_cells import NO_DENSITY_WARMUP

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
RECIPES = ("authors", "momentum-free")


def _claims_nothing(results) -> None:
    for finding in results.findings:
        assert finding.verdict == "inconclusive"
        assert "smoke run" in finding.evidence
    for table in results.tables:
        if table.name in ("verdicts", "ablation"):
            assert all(row[1:] == ["smoke run: not judged", "-"] for row in table.rows)


@pytest.mark.multiprocess
def test_gtopk_convergence_smoke(tmp_path):
    run_experiment("gtopk-convergence", tmp_path, smoke=True)
    results = check_results_folder(tmp_path, "gtopk-convergence")
    rows = results.table("final").rows
    assert [(r[1], r[2]) for r in rows] == [
        (variant, recipe) for recipe in RECIPES for variant in ("dense", "topk-0.01", "gtopk-0.01")
    ]
    sent = {(r[1], r[2]): r[9] for r in rows}
    for recipe in RECIPES:
        assert (
            sent[("gtopk-0.01", recipe)] < sent[("dense", recipe)] / 5
        )  # density <= 0.01 after warm-up
    real, sim = results.table("cross_check").rows
    assert real[1].startswith("real") and sim[1].startswith("simulated")
    assert real[3:] == sim[3:]  # gTop-k: the same numbers on both engines
    _claims_nothing(results)


@pytest.mark.multiprocess
def test_gtopk_density_smoke_resumes_from_its_cells(tmp_path):
    run_experiment("gtopk-density", tmp_path, smoke=True)
    results = check_results_folder(tmp_path, "gtopk-density")
    rows = {(r[1], r[2]): r for r in results.table("density").rows}
    no_dw = f"momentum-free{NO_DENSITY_WARMUP}"  # momentum-free also without the warm-up
    assert set(rows) == {
        (v, r) for v in ("dense", "gtopk-0.01", "gtopk-0.001") for r in RECIPES
    } | {("gtopk-0.01", no_dw), ("gtopk-0.001", no_dw)}
    # the warm-up's density 0.004 only changes runs sparser than it: at 0.01 the two arms are
    # the same run, at 0.001 the arm from step 1 sends fewer entries (steps k/d at the cap)
    same = slice(4, 11)  # accuracy .. traffic / dense (not the modelled time: measured compute)
    assert rows[("gtopk-0.01", no_dw)][same] == rows[("gtopk-0.01", "momentum-free")][same]
    assert rows[("gtopk-0.001", no_dw)][8] < rows[("gtopk-0.001", "momentum-free")][8]
    assert len(results.table("density_warmup").rows) == 2
    for recipe in RECIPES:
        dense, high, low = (rows[(v, recipe)] for v in ("dense", "gtopk-0.01", "gtopk-0.001"))
        assert low[3] < high[3] < dense[3]  # k
        assert low[8] < high[8] < dense[8]  # steps k/d at the cap
    assert len(results.table("ablation").rows) == 2
    _claims_nothing(results)
    real, sim = results.table("cross_check").rows
    assert real[0] == sim[0] == "fnn3-digits-gtopk-0.001-authors-s0"
    assert real[3:] == sim[3:]
    cells = sorted(p.name for p in (tmp_path / "cells").iterdir())
    assert len(cells) == 2 * 3 + 2 + 1  # (dense + 2 densities) x 2 recipes, 2 without warm-up, twin
    again = run_experiment("gtopk-density", tmp_path, smoke=True)
    assert "Every cell was read back" in again.table("density").note
    assert again.table("density").rows == results.table("density").rows
