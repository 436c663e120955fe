"""``sparsgd bench select``: its JSON contract and its argument checks (never its timings)."""

from __future__ import annotations

import json

import pytest
import torch

from sparsgd.cli.main import main


def test_json_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["bench", "select", "--numel", "2e4", "--density", "0.01", "--repeats", "2", "--json"])
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    methods = ["torch.topk", "topk", "topk_numpy", "sampled", "randomk"]
    assert [r["method"] for r in rows] == methods
    for row in rows:
        assert set(row) == {
            "method",
            "ms",
            "floor_ms",
            "x_floor",
            "achieved_density",
            "speedup_vs_torch_topk",
        }
        assert row["ms"] > 0 and row["floor_ms"] > 0
        assert row["floor_ms"] == rows[0]["floor_ms"]  # one floor, measured in the same rounds
        assert row["x_floor"] == pytest.approx(row["ms"] / row["floor_ms"])
        base = rows[0]["ms"]
        assert row["speedup_vs_torch_topk"] == pytest.approx(base / row["ms"])
    exact = {r["method"]: r["achieved_density"] for r in rows}
    assert exact["torch.topk"] == exact["topk"] == exact["topk_numpy"] == exact["randomk"] == 0.01
    assert 0 < exact["sampled"] <= 0.013  # at most tolerance (1.3) times the target


def test_threads_restored(capsys: pytest.CaptureFixture[str]) -> None:
    before = torch.get_num_threads()
    args = ["bench", "select", "--numel", "100", "--density", "0.5", "--repeats", "1"]
    assert main([*args, "--threads", str(before + 1), "--json"]) == 0
    assert torch.get_num_threads() == before


def test_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "select", "--numel", "1000", "--density", "0.1", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for method in ("torch.topk", "topk", "sampled", "randomk", "speed-up", "x floor"):
        assert method in out


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--numel", "0", "--density", "0.1"], "--numel: must be an integer >= 1; got '0'"),
        (["--numel", "1.5", "--density", "0.1"], "--numel: must be an integer >= 1"),
        (["--numel", "ten", "--density", "0.1"], "--numel: must be an integer >= 1"),
        (["--numel", "100", "--density", "1.5"], "--density: must be in (0, 1]; got '1.5'"),
        (["--numel", "100", "--density", "nan"], "--density: must be in (0, 1]"),
        (["--numel", "100", "--density", "0.1", "--repeats", "0"], "--repeats: must be"),
        (["--numel", "100", "--density", "0.1", "--seed", "-1"], "--seed: must be"),
        (["--numel", "100", "--density", "0.1", "--threads", "0"], "--threads: must be"),
        (["--density", "0.1"], "--numel"),
    ],
)
def test_bad_arguments(args: list[str], text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", "select", *args])
    assert info.value.code == 2
    assert text in capsys.readouterr().err
