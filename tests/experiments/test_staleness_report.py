"""The staleness report in full mode, on made-up cells: verdict words, tables, figures, notes."""

from __future__ import annotations

from sparsgd.experiments.cells import CellRate
from sparsgd.experiments.spec import RunContext
from sparsgd.experiments.staleness import staleness_config
from sparsgd.experiments.staleness_report import staleness_outcome

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEEDS = (0, 1, 2)


def _result(accuracy: float, seed: int) -> dict:
    test = accuracy + 0.001 * seed  # seed-to-seed spread, the same for every method
    return {
        "valid_accuracy": accuracy,
        "test_accuracy": test,
        "diverged": False,
        "reason": None,
        "chance": 0.1,
        "epochs": 3.0,
        "curve": {"updates": [12, 24], "valid": [accuracy / 2, accuracy], "test": [test / 2, test]},
        "tau_mean": 4.0,
        "tau_max": 9,
        "cpu_seconds": 1.0,
    }


def _runs(cfg, accuracy_of) -> dict:
    runs = {}
    for _, spec in cfg.cells(SEEDS):
        s = int(spec["staleness"].split(":")[1])
        key = (s, spec["method"], spec["lr"])
        runs.setdefault(key, []).append(_result(accuracy_of(*key), spec["seed"]))
    return runs


def _outcome(tmp_path, accuracy_of):
    cfg = staleness_config(True)  # S = 0, 4; lrs 0.05, 0.2
    ctx = RunContext(out=tmp_path, seeds=SEEDS, smoke=False)
    rate = CellRate(ran=10, reused=4, seconds=60.0, workers=2)
    return staleness_outcome(cfg, _runs(cfg, accuracy_of), ctx, rate)


def test_top_k_equal_to_vanilla_agrees_with_the_later_version_only(tmp_path):
    def accuracy_of(s, method, lr):
        return 0.9 if lr == 0.2 else 0.5  # every method alike; lr 0.2 is everyone's lr*

    outcome = _outcome(tmp_path, accuracy_of)
    later, v1 = outcome.findings
    assert later.verdict == "agrees" and "S=4" in later.evidence
    assert v1.verdict == "inconclusive"  # not better than vanilla: no difference at all
    assert "Poisson(S)" in later.reduced and "3 seeds" in later.reduced
    verdicts = outcome.tables[-1]
    assert [row[0] for row in verdicts.rows] == [4]  # stale cells only
    assert verdicts.rows[0][4].startswith("agrees")
    for fig in outcome.figures:
        assert (tmp_path / fig.file).read_bytes()[:8] == PNG_MAGIC
    note = outcome.notes[0]
    assert "10 run by this invocation" in note and "600 runs per hour" in note  # 10 in 60 s
    assert outcome.data["lr_star"]["4|topk-0.01"] == 0.2


def test_top_k_ahead_of_vanilla_and_of_every_counter_measure_agrees_with_v1(tmp_path):
    def accuracy_of(s, method, lr):
        return 0.95 if method == "topk-0.01" else 0.9

    later, v1 = _outcome(tmp_path, accuracy_of).findings
    assert (later.verdict, v1.verdict) == ("agrees", "agrees")


def test_every_run_at_chance_is_inconclusive_for_both_versions(tmp_path):
    later, v1 = _outcome(tmp_path, lambda s, method, lr: 0.1).findings
    assert (later.verdict, v1.verdict) == ("inconclusive", "inconclusive")
    assert "chance" in later.evidence
