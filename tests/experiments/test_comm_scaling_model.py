"""comm-scaling's derivations: compute times, efficiency ratios, the verdicts and the lab table."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from sparsgd.experiments.comm_scaling import _smoke_guard
from sparsgd.experiments.comm_scaling_lab import lab_comparison, load_lab_runs, resolve_lab_dir
from sparsgd.experiments.comm_scaling_model import (
    RATIO_TOLERANCE,
    compute_for_ratio,
    network_entry,
    ratio_verdict,
    scaling_findings,
)
from sparsgd.experiments.model_zoo import (
    GPU_FLOPS,
    ZOO,
    PaperNumbers,
    flop_seconds,
    seconds_from_throughput,
)
from sparsgd.report.results import Finding

EXACT = 1e-12  # relative: the same arithmetic done twice, by hand and by the code
ALPHA, BETA = 0.436e-3, 9e-9  # the 1 GbE fit the efficiency table uses
LAB = resolve_lab_dir("docs/lab_results/comm-100mbit")


def test_compute_time_from_throughput_by_hand():
    assert seconds_from_throughput(128, 1000.0) == pytest.approx(0.128, rel=EXACT)
    assert seconds_from_throughput(20, 400.0) == pytest.approx(0.05, rel=EXACT)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="batch must be an integer >= 1"):
            seconds_from_throughput(bad, 1000.0)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="samples_per_s must be a finite number > 0"):
            seconds_from_throughput(32, bad)


def test_flop_assumption_by_hand():
    # 3 (forward + backward) * 2 FLOPs * 1e9 multiply-adds * 10 samples / 6e10 FLOP/s = 1 s
    assert flop_seconds(1e9, 10, flops=6e10) == pytest.approx(1.0, rel=EXACT)
    vgg = ZOO["vgg16"]
    assert flop_seconds(vgg.macs_per_sample, 128) == pytest.approx(
        6 * 313e6 * 128 / GPU_FLOPS, rel=EXACT
    )
    with pytest.raises(ValueError, match="flops must be a finite number > 0"):
        flop_seconds(1e9, 10, flops=0.0)


def test_paper_throughput_replaces_the_assumption_when_known():
    vgg = ZOO["vgg16"]
    t, source = vgg.compute_seconds()
    assert source == "assumed (FLOP model)" and vgg.paper.samples_per_s is None
    assert t == pytest.approx(flop_seconds(vgg.macs_per_sample, vgg.batch), rel=EXACT)
    known = replace(vgg, paper=replace(vgg.paper, samples_per_s=1280.0))
    t, source = known.compute_seconds()
    assert source == "paper"
    assert t == pytest.approx(vgg.batch / 1280.0, rel=EXACT)  # 128 / 1280 = 0.1 s


def test_every_network_cites_its_batch():
    for m in ZOO.values():
        assert m.batch >= 1 and "hclhkbu/gtopkssgd" in m.paper.batch_from
        assert m.paper.samples_per_s is not None or m.paper.samples_per_s_from.startswith(
            "not found"
        )


def test_compute_time_for_a_ratio_by_hand():
    # (t + 1.0) / (t + 0.1) = 4  <=>  t = (1.0 - 0.4) / 3 = 0.2
    t = compute_for_ratio(1.0, 0.1, 4.0)
    assert t == pytest.approx(0.2, rel=EXACT)
    assert (t + 1.0) / (t + 0.1) == pytest.approx(4.0, rel=EXACT)
    assert compute_for_ratio(1.0, 0.1, 10.0) is None  # the ratio at t = 0: needs t < 0 beyond
    assert compute_for_ratio(1.0, 0.1, 12.0) is None
    assert compute_for_ratio(1.0, 0.1, 1.0) is None  # reached only as t -> infinity
    assert compute_for_ratio(0.1, 1.0, 1.5) is None  # gTop-k slower: ratio below 1 for all t


def test_efficiency_entry_against_the_formulas_by_hand():
    e = network_entry("resnet20", 32, 0.001, cpu_repeats=0)
    d, k, p = e["d"], e["k"], 32
    assert k == math.floor(0.001 * d)
    t_c = 3 * 2 * 41e6 * 32 / GPU_FLOPS
    t_dense = 2 * (p - 1) * ALPHA + 2 * (p - 1) / p * 4 * d * BETA
    t_topk = 5 * ALPHA + (p - 1) * k * 8 * BETA
    t_gtopk = 2 * 5 * (ALPHA + k * 8 * BETA)
    m = e["model"]
    assert e["t_comp"] == pytest.approx(t_c, rel=EXACT)
    assert m["e_dense"] == pytest.approx(t_c / (t_c + t_dense), rel=EXACT)
    assert m["over_dense"] == pytest.approx((t_c + t_dense) / (t_c + t_gtopk), rel=EXACT)
    assert m["over_topk"] == pytest.approx((t_c + t_topk) / (t_c + t_gtopk), rel=EXACT)
    t_at_lo = (t_dense - 2.7 * t_gtopk) / (2.7 - 1)
    assert e["implied_s"]["dense_2.7"] == pytest.approx(t_at_lo, rel=EXACT)
    assert e["implied_s"]["topk_1.1"] is None  # ResNet-20: Top-k's allgather is faster
    assert e["verdict_dense"] == "inconclusive"  # the paper's value is not known


def test_ratio_verdict_within_30_percent():
    assert RATIO_TOLERANCE == 0.30
    assert ratio_verdict(12.9, 10.0).word == "agrees"
    assert ratio_verdict(7.1, 10.0).word == "agrees"
    assert ratio_verdict(13.1, 10.0).word == "disagrees"
    assert ratio_verdict(6.9, 10.0).word == "disagrees"
    assert ratio_verdict(4.0, None).word == "inconclusive"
    assert "+29%" in ratio_verdict(12.9, 10.0).text


class _OneP:
    workers = (2,)  # one P: no byte-growth finding
    density, numel = 0.001, 1_000_000


def _entries_with_paper(factors: dict[str, float]) -> dict[str, dict]:
    entries = {}
    for key, factor in factors.items():
        e = network_entry(key, 32, 0.001, cpu_repeats=0)
        e["paper_over_dense"] = e["model"]["over_dense"] * factor
        entries[key] = e
    return entries


def test_networks_combine_into_one_verdict_per_claim():
    dense_claim = 0  # findings: over dense, then over Top-k
    close = _entries_with_paper({"resnet20": 1.1, "alexnet": 0.9})
    assert scaling_findings(_OneP, {}, close)[dense_claim].verdict == "agrees"
    mixed = _entries_with_paper({"resnet20": 1.1, "alexnet": 3.0})
    found = scaling_findings(_OneP, {}, mixed)
    assert found[dense_claim].verdict == "partly agrees"
    assert found[1].verdict == "inconclusive"  # no paper values over Top-k
    assert "30%" in found[dense_claim].rule
    far = _entries_with_paper({"resnet20": 3.0, "alexnet": 0.3})
    assert scaling_findings(_OneP, {}, far)[dense_claim].verdict == "disagrees"


def test_lab_model_matches_what_the_lab_recorded():
    runs = load_lab_runs(LAB)
    assert [r["workers"] for r in runs] == [2, 4, 8]
    table, finding, _ = lab_comparison(LAB)
    recorded = {(run["workers"], row["collective"]): row for run in runs for row in run["rows"]}
    for p, name, measured, comm, model, whole, ratio, word in table.rows:
        row = recorded[(p, name)]
        assert (measured, comm) == (row["median_ms"], row["comm_ms"])
        assert model == pytest.approx(row["model_ms"], rel=1e-9)  # lab_comm, at measuring time
        assert whole == pytest.approx(measured / row["model_ms"], rel=1e-9)
        assert ratio == pytest.approx(comm / row["model_ms"], rel=1e-9)
        assert word == ("agrees" if abs(ratio - 1) <= 0.30 else "disagrees")
    words = {(r[0], r[1]): r[7] for r in table.rows}
    assert all(words[(p, "dense")] == "agrees" for p in (2, 4, 8))
    assert finding.verdict in ("agrees", "partly agrees", "disagrees")


def test_lab_records_must_be_lab_records(tmp_path):
    (tmp_path / "P2.json").write_text(json.dumps({"workers": 2, "rows": []}))
    with pytest.raises(ValueError, match="no 'rate'"):
        load_lab_runs(tmp_path)
    assert lab_comparison(tmp_path / "absent") is None


def test_smoke_run_prints_no_verdict():
    found = [Finding("claim", "agrees", "numbers", rule="r")]
    assert _smoke_guard(found, smoke=False) == found
    (guarded,) = _smoke_guard(found, smoke=True)
    assert guarded.verdict == "inconclusive" and guarded.evidence.startswith("smoke run")


def test_paper_numbers_default_to_not_found():
    numbers = PaperNumbers(32, "somewhere")
    assert numbers.samples_per_s is None and numbers.over_dense is None
    assert numbers.samples_per_s_from.startswith("not found")
