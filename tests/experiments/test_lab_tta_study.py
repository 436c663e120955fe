"""lab-tta's numbers without a lab: time to target, speed-ups, verdicts, table, figure, cells.

The cell results are written by hand here (the shape ``run_lab_cell`` returns); the run on a
real lab is tests/lab/test_lab_tta_smoke.py.
"""

from __future__ import annotations

import math

import pytest
from scipy import stats
from smoke_checks import PNG_MAGIC

from sparsgd.experiments import lab_tta_study
from sparsgd.experiments.lab_tta import Setup, _prorate
from sparsgd.experiments.lab_tta_cells import cell_name, cell_spec
from sparsgd.experiments.lab_tta_study import LabTTAConfig, _figure
from sparsgd.experiments.lab_tta_verdicts import (
    final_accuracy,
    findings,
    judgements,
    rate_words,
    speedups,
    time_to_target,
    tta_table,
    verdict_table,
)
from sparsgd.experiments.spec import RunContext
from sparsgd.lab.cluster import LabUnavailable

TOL = 1e-9  # exact arithmetic on a few floats
STEPS = [50, 100, 150, 200]


def _result(seconds_per_step: float, accuracy: list[float], split: dict | None = None) -> dict:
    return {
        "method": "x",
        "curve": {
            "step": STEPS,
            "seconds": [s * seconds_per_step for s in STEPS],
            "wire_mb": [s * 0.5 for s in STEPS],
            "accuracy": accuracy,
        },
        "wire_mb_per_node": [100.0, 102.0],
        "time_split_ms": split,
        "load": [2.0, 3.0],
    }


RISING = [0.90, 0.94, 0.955, 0.96]  # reaches 0.95 at step 150
NEVER = [0.80, 0.85, 0.90, 0.93]


def test_time_to_target_is_the_first_evaluation_at_or_above_it():
    result = _result(0.1, RISING)
    assert time_to_target(result, 0.95) == pytest.approx((15.0, 150))
    assert time_to_target(result, 0.94) == pytest.approx((10.0, 100))  # "at": equality counts
    assert time_to_target(_result(0.1, NEVER), 0.95) is None
    assert final_accuracy(result) == 0.96


def test_speedups_pair_seeds_and_skip_those_that_never_reached():
    arm = [_result(0.02, RISING), _result(0.04, RISING), _result(0.02, NEVER)]
    base = [_result(0.10, RISING), _result(0.10, RISING), _result(0.10, RISING)]
    assert speedups(arm, base, 0.95) == pytest.approx([5.0, 2.5])


def _runs(gtopk: list[dict], dense: list[dict], powersgd: list[dict]) -> dict:
    return {
        ("100mbit", "dense"): dense,
        ("100mbit", "gtopk"): gtopk,
        ("100mbit", "powersgd"): powersgd,
    }


def test_verdicts_sooner_and_not_worse():
    gtopk = [_result(t, RISING) for t in (0.020, 0.021, 0.022)]
    dense = [_result(t, RISING) for t in (0.100, 0.104, 0.110)]
    powersgd = [_result(0.05, RISING), _result(0.05, RISING), _result(0.05, NEVER)]
    found = {
        (j.baseline, j.claim): j.verdict for j in judgements(_runs(gtopk, dense, powersgd), 0.95)
    }
    assert set(found) == {(b, c) for b in ("dense", "powersgd") for c in ("sooner", "accuracy")}
    assert found[("dense", "sooner")].word == "agrees"  # 12-16 s sooner on every seed
    # independent: the t interval of the paired differences of -t (seconds at step 150)
    diffs = [150 * (d - g) for d, g in ((0.100, 0.020), (0.104, 0.021), (0.110, 0.022))]
    mean = sum(diffs) / 3
    half = stats.t.ppf(0.975, 2) * stats.tstd(diffs) / math.sqrt(3)
    assert found[("dense", "sooner")].diff.low == pytest.approx(mean - half, abs=TOL)
    assert found[("dense", "accuracy")].word == "agrees"  # equal accuracies: difference 0
    sooner = found[("powersgd", "sooner")]
    assert sooner.word == "inconclusive" and "never reached" in sooner.text
    # differences 0, 0, +0.03: mean 0.01, interval 0.01 -/+ 4.30 * 0.01 straddles -0.01
    assert found[("powersgd", "accuracy")].word == "inconclusive"


def test_a_clearly_lower_final_accuracy_is_worse():
    low = [0.90, 0.94, 0.95, 0.93]
    gtopk = [_result(0.02, low) for _ in range(3)]
    dense = [_result(0.10, RISING) for _ in range(3)]
    found = judgements(_runs(gtopk, dense, dense), 0.95)
    accuracy = [j.verdict for j in found if j.claim == "accuracy" and j.baseline == "dense"]
    assert accuracy[0].word == "disagrees"  # 3 points below dense on every seed, margin 1


def test_table_rows_speedups_with_intervals_and_splits():
    split = {"compute": 3.0, "compress": 2.0, "comm": 100.0, "apply": 1.0}
    gtopk = [_result(t, RISING, split) for t in (0.020, 0.025, 0.030)]
    dense = [_result(0.100, RISING, split) for _ in range(3)]
    powersgd = [_result(0.05, RISING) for _ in range(3)]
    table = tta_table(_runs(gtopk, dense, powersgd), 0.95, "note")
    row = {r[1]: dict(zip(table.columns, r, strict=True)) for r in table.rows}["gtopk"]
    ratios = [0.100 / t for t in (0.020, 0.025, 0.030)]
    mean = sum(ratios) / 3
    half = stats.t.ppf(0.975, 2) * stats.tstd(ratios) / math.sqrt(3)
    assert (
        row["speed-up vs dense (95% CI)"] == f"{mean:.2f}x [{mean - half:.2f}, {mean + half:.2f}]"
    )
    assert row["seeds at target"] == "3 of 3" and row["at step"] == "150"
    assert row["wire MB per node"] == pytest.approx(101.0)
    assert row["step ms: compute / compress / comm / apply"] == "3.0 / 2.0 / 100.0 / 1.0"
    ddp = {r[1]: dict(zip(table.columns, r, strict=True)) for r in table.rows}["powersgd"]
    assert ddp["step ms: compute / compress / comm / apply"] == "(DDP loop: not split)"
    assert ddp["speed-up vs powersgd (95% CI)"] == "baseline"
    assert ddp["speed-up vs dense (95% CI)"] == "2.00x [2.00, 2.00]"  # 0.100 / 0.05 every seed


def test_smoke_findings_are_not_judged_and_full_ones_are():
    gtopk = [_result(0.02, RISING) for _ in range(3)]
    dense = [_result(t, RISING) for t in (0.10, 0.11, 0.12)]
    found = judgements(_runs(gtopk, dense, dense), 0.95)
    smoke = findings(found, ("100mbit",), 0.95, "reduced", smoke=True)
    assert len(smoke) == 4 and all(f.verdict == "inconclusive" for f in smoke)
    assert all("smoke" in f.evidence for f in smoke)
    assert all(row[2] == "smoke run: not judged" for row in verdict_table(found, 0.95, True).rows)
    full = findings(found, ("100mbit",), 0.95, "reduced", smoke=False)
    assert "100 Mbit/s" in full[0].claim and "sooner than dense S-SGD" in full[0].claim
    assert full[0].verdict == "agrees" and full[0].reduced == "reduced" and full[0].rule


def test_one_finding_per_rate_and_claim():
    fast = [_result(0.02, RISING) for _ in range(3)]
    slow = [_result(t, RISING) for t in (0.10, 0.11, 0.12)]
    runs = {
        ("100mbit", "dense"): slow,
        ("100mbit", "gtopk"): fast,
        ("1gbit", "dense"): fast,
        ("1gbit", "gtopk"): slow,
    }
    found = findings(judgements(runs, 0.95), ("100mbit", "1gbit"), 0.95, "r", smoke=False)
    sooner = [f for f in found if "sooner" in f.claim]
    assert [f.claim.split(" link")[0] for f in sooner] == [
        "(project) over a 100 Mbit/s",
        "(project) over a 1 Gbit/s",
    ]
    assert [f.verdict for f in sooner] == ["agrees", "disagrees"]
    assert len(found) == 4  # no PowerSGD arm: only the claims against dense


def test_rate_words():
    assert rate_words("100mbit") == "100 Mbit/s"
    assert rate_words("1gbit") == "1 Gbit/s"
    assert rate_words("1000mbit") == "1 Gbit/s"


def test_cell_spec_leaves_out_the_data_folder_and_refuses_unknown_methods():
    spec = cell_spec(Setup(data_dir="/somewhere", seed=2), "gtopk")
    assert "data_dir" not in spec and spec["method"] == "gtopk" and spec["seed"] == 2
    assert cell_name(spec) == "100mbit-gtopk-s2"
    with pytest.raises(ValueError, match=r"method must be one of .* got 'gtop'"):
        cell_spec(Setup(), "gtop")
    with pytest.raises(ValueError, match=r"methods must be among .* got 'sgd'"):
        LabTTAConfig(links=(("100mbit", ("sgd",)),))
    with pytest.raises(ValueError, match="rate must be a number and a unit"):
        LabTTAConfig(links=(("fast", ("dense",)),))
    with pytest.raises(ValueError, match=r"target must be an accuracy in \(0, 1\); got 95"):
        LabTTAConfig(target=95)


def test_prorate_spreads_the_wire_total_by_the_counted_bytes():
    points = [{"counted": [100, 10]}, {"counted": [300, 40]}, {"counted": [400, 40]}]
    _prorate(points, [1000, 50])
    assert [p["wire_bytes_per_rank"] for p in points] == [[250, 12], [750, 50], [1000, 50]]


def test_figure_has_a_row_per_rate_and_every_seed_drawn(tmp_path):
    cfg = LabTTAConfig(links=(("100mbit", ("dense", "gtopk")), ("1gbit", ("gtopk",))))
    runs = {
        (rate, m): [_result(t, RISING) for t in (0.02, 0.03)]
        for rate, methods in cfg.links
        for m in methods
    }
    ctx = RunContext(out=tmp_path, seeds=(0, 1), smoke=False)
    figure = _figure(cfg, runs, ctx)
    assert (tmp_path / "tta.png").read_bytes()[:8] == PNG_MAGIC
    panels = figure.drawing["panels"]
    assert len(panels) == 6 and figure.drawing["ncols"] == 3
    assert [len(p["series"]) for p in panels] == [2, 2, 2, 1, 1, 1]
    first = panels[0]["series"][0]
    assert len(first["runs"]) == 2
    assert first["y"] == pytest.approx(RISING)
    assert first["x"] == pytest.approx([s * 0.025 for s in STEPS])  # mean of the two seeds


def test_the_study_refuses_up_front_without_a_lab(tmp_path, monkeypatch):
    monkeypatch.setattr(lab_tta_study, "missing_requirements", lambda: ["root (run as root)"])
    ctx = RunContext(out=tmp_path, seeds=(0,), smoke=True)
    with pytest.raises(LabUnavailable, match=r"lab-tta needs the network lab; missing: root"):
        lab_tta_study.run_lab_tta(lab_tta_study.lab_tta_config(True), ctx)
    assert not any(tmp_path.iterdir())  # nothing ran, nothing written
