"""Grouping cells by arm, paired verdicts, tables and figures of the S-SGD studies.

The results are written by hand here (the shape ``run_cell`` returns), so these tests train
nothing and need no recipe.
"""

from __future__ import annotations

import pytest
from smoke_checks import PNG_MAGIC

from sparsgd.experiments.sync_cells import SyncCell, first_reaching, score
from sparsgd.experiments.sync_figures import ArmCurves, _series, draw_study
from sparsgd.experiments.sync_study import (
    SMOKE_EVIDENCE,
    StudyRuns,
    arm_table,
    finding,
    judge_arms,
    verdict_table,
)
from sparsgd.experiments.sync_tasks import SyncTask

TASK = SyncTask("LeNet-5 / MNIST", "lenet5", "mnist", epochs=3, lr=0.05, target=0.97)
MARGIN, CHANCE = 0.01, 0.2


def _result(accuracies: list[float], outcome: str = "ok") -> dict:
    n = len(accuracies)
    return {
        "engine": "sim",
        "outcome": outcome,
        "outcome_reason": "",
        "num_classes": 10,
        "numel": 61706,
        "final": {} if outcome == "diverged" else {"test_accuracy": accuracies[-1]},
        "curves": {
            "epoch": [float(e + 1) for e in range(n)],
            "test_accuracy": accuracies,
            "bytes_sent": [1000.0 * (e + 1) for e in range(n)],
            "steps_k_over_d": [0.5 * (e + 1) for e in range(n)],
            "modelled_s": [10.0 * (e + 1) for e in range(n)],
        },
    }


def _runs(arms: dict[tuple[str, str], list[dict]], seeds=(0, 1, 2)) -> StudyRuns:
    """``{(method, recipe): one result per seed}`` as a study's runs."""
    cells, results = [], {}
    for (method, recipe), per_seed in arms.items():
        for seed, result in zip(seeds, per_seed, strict=True):
            cell = SyncCell(TASK, method, 0.001, recipe, seed, 4)
            cells.append(cell)
            results[cell.name] = result
    return StudyRuns(cells, results)


def _arm(method: str, recipe: str = "authors") -> tuple[str, str, str]:
    variant = "dense" if method == "dense" else f"{method}-0.001"
    return ("lenet5-mnist", variant, recipe)


def test_cells_are_named_by_task_variant_recipe_seed_and_engine():
    cell = SyncCell(TASK, "gtopk", 0.00025, "momentum-free", 2, 4)
    assert cell.name == "lenet5-mnist-gtopk-0.00025-momentum-free-s2"
    real = SyncCell(TASK, "dense", 1.0, "authors", 0, 4, engine="real")
    assert real.name == "lenet5-mnist-dense-authors-s0-real"
    with pytest.raises(ValueError, match="engine must be one of"):
        SyncCell(TASK, "dense", 1.0, "authors", 0, 4, engine="gpu")


def test_equal_scores_agree_and_a_clear_loss_disagrees():
    dense = [_result([0.95, 0.98]), _result([0.95, 0.981]), _result([0.96, 0.979])]
    same = [_result([0.94, 0.98]), _result([0.95, 0.981]), _result([0.95, 0.979])]
    worse = [_result([0.9, 0.93]), _result([0.9, 0.94]), _result([0.9, 0.935])]
    runs = _runs(
        {("dense", "authors"): dense, ("gtopk", "authors"): same, ("topk", "authors"): worse}
    )
    agree = judge_arms(runs, _arm("gtopk"), _arm("dense"), MARGIN, CHANCE)
    assert agree.verdict.word == "agrees"
    assert agree.verdict.diff.mean == pytest.approx(0.0, abs=1e-12)
    lose = judge_arms(runs, _arm("topk"), _arm("dense"), MARGIN, CHANCE)
    assert lose.verdict.word == "disagrees"
    assert lose.verdict.diff.mean == pytest.approx((0.93 + 0.94 + 0.935 - 0.98 - 0.981 - 0.979) / 3)
    claim = finding("claim", [agree, lose], "rule", "reduced", smoke=False)
    assert claim.verdict == "partly agrees"
    assert "agrees" in claim.evidence and claim.rule == "rule" and claim.reduced == "reduced"


def test_a_diverged_run_scores_chance():
    diverged = _result([0.5], outcome="diverged")
    assert score(diverged, 0.1) == 0.1
    dense = [_result([0.98])] * 3
    runs = _runs({("dense", "authors"): dense, ("gtopk", "authors"): [diverged] * 3})
    verdict = judge_arms(runs, _arm("gtopk"), _arm("dense"), MARGIN, CHANCE).verdict
    assert verdict.word == "disagrees"
    assert verdict.diff.mean == pytest.approx(0.1 - 0.98)


def test_runs_all_at_chance_are_inconclusive():
    low = [_result([0.11]), _result([0.12]), _result([0.1])]
    runs = _runs({("dense", "authors"): low, ("gtopk", "authors"): low})
    verdict = judge_arms(runs, _arm("gtopk"), _arm("dense"), MARGIN, CHANCE).verdict
    assert verdict.word == "inconclusive" and "chance" in verdict.text


def test_arms_with_other_seeds_are_not_paired():
    dense = _runs({("dense", "authors"): [_result([0.9])] * 3})
    other = _runs({("gtopk", "authors"): [_result([0.9])] * 3}, seeds=(0, 1, 5))
    runs = StudyRuns(dense.cells + other.cells, {**dense.results, **other.results})
    with pytest.raises(ValueError, match="must hold the same seeds"):
        judge_arms(runs, _arm("gtopk"), _arm("dense"), MARGIN, CHANCE)


def test_a_smoke_run_judges_nothing():
    runs = _runs(
        {("dense", "authors"): [_result([0.99])] * 3, ("gtopk", "authors"): [_result([0.99])] * 3}
    )
    judgement = judge_arms(runs, _arm("gtopk"), _arm("dense"), MARGIN, CHANCE)
    assert judgement.verdict.word == "agrees"  # what a full run would say
    claim = finding("claim", [judgement], "rule", "reduced", smoke=True)
    assert claim.verdict == "inconclusive" and claim.evidence == SMOKE_EVIDENCE
    table = verdict_table("v", "title", [judgement], smoke=True)
    assert not any("agrees" in str(cell) for row in table.rows for cell in row)


def test_arm_table_reports_epochs_to_target_and_cells_that_never_reach_it():
    fast = [_result([0.97, 0.98, 0.99]), _result([0.95, 0.975, 0.99]), _result([0.96, 0.98, 0.99])]
    slow = [_result([0.9, 0.93, 0.95])] * 3
    runs = _runs({("dense", "authors"): fast, ("gtopk", "authors"): slow})
    rows = {row[1]: row for row in arm_table(runs, "t", "title", "").rows}
    assert rows["dense"][6] == f"{(1 + 2 + 2) / 3:.2f} (3 of 3)"
    assert rows["dense"][7] == pytest.approx((0.5 + 1.0 + 1.0) / 3)  # steps k/d at the target
    assert rows["gtopk-0.001"][6] == "never (0 of 3)"
    assert rows["gtopk-0.001"][3] == 61  # k = floor(0.001 * 61706)
    assert first_reaching(fast[1], 0.97) == (2.0, 1.0)


def test_seed_lines_under_a_mean_of_the_seeds_still_running(tmp_path):
    stopped = _result([0.5])  # diverged after its first evaluation
    arm = ArmCurves("gtopk", "authors", [_result([0.6, 0.8]), _result([0.7, 0.9]), stopped])
    series = _series(arm, "epoch")
    assert series.x == [1.0, 2.0]
    assert series.y == pytest.approx([0.6, 0.85])
    assert [len(ry) for _, ry in series.runs] == [2, 2, 1]  # every seed drawn, as far as it ran
    assert series.style == "-"
    figure = draw_study(tmp_path, "f.png", "caption", [("LeNet-5, authors", [arm], 0.97)])
    assert (tmp_path / figure.file).read_bytes()[:8] == PNG_MAGIC
    assert len(figure.drawing["panels"]) == 3  # epochs, bytes, modelled time
