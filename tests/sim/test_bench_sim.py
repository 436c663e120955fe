"""``sparsgd bench sim``: its rows and its argument checks (never its timings)."""

from __future__ import annotations

import pytest

from sparsgd.bench.sim import measure_dense_path, measure_sim, measure_update_ratio
from sparsgd.cli.main import main

pytestmark = pytest.mark.timeout(300)


@pytest.mark.slow
def test_measure_sim_reports_rss_and_update_time_per_w():
    rows = measure_sim([2, 4], steps=16, density=0.1, num_train=64)
    assert [row["workers"] for row in rows] == [2, 4]
    for row in rows:
        assert row["d"] == 199_210  # the papers' FNN-3 on MNIST's shape
        assert row["rss_mb"] > 0 and row["update_ms"] > 0


def test_dense_path_row_has_both_times():
    row = measure_dense_path(steps=8, repeats=3, num_train=64)
    assert row["sim_ms"] > 0 and row["plain_ms"] > 0
    low, high = row["ratio_range"]
    assert low <= row["dense_ratio"] <= high  # the median of the per-repeat ratios


def test_update_ratio_interleaves_rounds_and_takes_the_first_w_as_one():
    row = measure_update_ratio([2, 3], steps=24, density=0.1, num_train=64, chunk=6)
    assert row["rounds"] == 3  # (24 - 24 // 4) / 6
    assert row["ratio"][0] == 1.0 and row["ratio_range"][0] == [1.0, 1.0]
    low, high = row["ratio_range"][1]
    assert low <= row["ratio"][1] <= high and all(ms > 0 for ms in row["update_ms"])
    with pytest.raises(ValueError, match="no round"):
        measure_update_ratio([2], steps=8, density=0.1, num_train=64, chunk=64)


def test_bench_sim_refuses_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "sim", "--density", "0"])
    assert "must be in (0, 1]" in capsys.readouterr().err
