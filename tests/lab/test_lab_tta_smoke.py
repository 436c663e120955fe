"""``lab-tta`` in smoke mode on a real lab: cells, bytes, no verdict, resumable, reported.

Two nodes at 100 Mbit/s, FNN-3 on the embedded digits, 30 steps per method (dense, gtopk,
powersgd). Skipped with the reason where the machine cannot build a lab (conftest).
"""

from __future__ import annotations

import json

import pytest

from sparsgd.experiments.lab_tta_study import lab_tta_config
from sparsgd.experiments.runner import run_experiment
from sparsgd.models import ModelSpec, build_model
from sparsgd.report.build import build_report

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(600), pytest.mark.slow]

FLOAT_BYTES = 4


@pytest.fixture(scope="module")
def smoke(lab_machine_module, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab-tta")
    return folder, run_experiment("lab-tta", folder, smoke=True)


def test_smoke_writes_one_small_cell_per_method_with_the_curve(smoke):
    folder, results = smoke
    cells = sorted((folder / "cells").glob("*.json"))
    assert [c.stem for c in cells] == [
        "100mbit-dense-s0",
        "100mbit-gtopk-s0",
        "100mbit-powersgd-s0",
    ]
    for path in cells:
        assert path.stat().st_size < 4000  # the curve only: no model, no checkpoint
        curve = json.loads(path.read_text())["result"]["curve"]
        assert curve["step"] == [10, 20, 30]
        assert all(0 <= a <= 1 for a in curve["accuracy"])
        assert curve["seconds"] == sorted(curve["seconds"]) and curve["seconds"][0] > 0
    assert not (folder / "runs").exists()
    assert [row[1] for row in results.table("tta").rows] == ["dense", "gtopk", "powersgd"]


def test_smoke_wire_bytes_hold_the_payload_and_gtopk_sends_less(smoke):
    folder, _ = smoke
    cell = {
        p.stem.split("-")[1]: json.loads(p.read_text())["result"]
        for p in (folder / "cells").glob("*.json")
    }
    spec = ModelSpec(input_shape=(1, 8, 8), num_classes=10)  # digits: 8 x 8 pixels
    numel = sum(p.numel() for p in build_model("fnn3", spec).parameters())
    # the ring all-reduce of P = 2 sends 2 (P - 1) / P d floats per node per step: a lower
    # bound for the wire, which adds headers and the start-up's traffic
    payload_mb = 30 * numel * FLOAT_BYTES / 1e6
    dense = sum(cell["dense"]["wire_mb_per_node"]) / 2
    assert dense >= payload_mb
    assert sum(cell["gtopk"]["wire_mb_per_node"]) / 2 < dense / 5  # k = 1 % of d per step


def test_smoke_judges_nothing_and_the_report_renders_it(smoke):
    folder, results = smoke
    assert results.mode == "smoke" and len(results.findings) == 4
    assert all(f.verdict == "inconclusive" and "smoke" in f.evidence for f in results.findings)
    assert all(f.reduced and "no latency" in f.reduced for f in results.findings)
    assert (folder / "tta.png").is_file() and results.figures[0].drawing["panels"]
    text = build_report([folder], write=False)
    target = lab_tta_config(smoke=True).target
    assert "lab-tta" in text and f"Time to {target:.0%} test accuracy" in text


def test_a_second_run_reads_every_cell_back(smoke):
    folder, first = smoke
    again = run_experiment("lab-tta", folder, smoke=True)
    assert again.data["cells_per_hour"]["ran"] == 0
    assert again.table("tta").rows == first.table("tta").rows
