"""``sparsgd bench sim``: its rows and its argument checks (never its timings)."""

from __future__ import annotations

import pytest

from sparsgd.bench.sim import measure_dense_path, measure_sim
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
    row = measure_dense_path(steps=4, repeats=1, num_train=64)
    assert row["sim_ms"] > 0 and row["plain_ms"] > 0
    assert row["dense_ratio"] == row["sim_ms"] / row["plain_ms"]


def test_bench_sim_refuses_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "sim", "--density", "0"])
    assert "must be in (0, 1]" in capsys.readouterr().err
