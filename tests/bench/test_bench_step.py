"""``sparsgd bench step``: its JSON contract and argument checks (never its timings)."""

from __future__ import annotations

import json

import pytest

from sparsgd.bench.step import TIMES, measure_step
from sparsgd.cli.main import main


@pytest.mark.multiprocess
def test_json_rows(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "step", "--model", "lenet5", "--batch", "4", "--repeats", "2"]
    assert main([*args, "--collective", "gtopk", "--collective", "dense", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["collective"] for r in rows] == ["gtopk", "dense"]
    for row in rows:
        assert set(row) == {"model", "collective", "overhead", *TIMES}
        assert row["model"] == "lenet5"
        assert row["fb_ms"] > 0 and row["compress_ms"] > 0 and row["apply_ms"] > 0
        share = (row["compress_ms"] + row["apply_ms"]) / row["fb_ms"]
        assert row["overhead"] == pytest.approx(share)


@pytest.mark.multiprocess
def test_two_ranks_table(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "step", "--batch", "2", "--repeats", "1", "--workers", "2"]
    assert main([*args, "--collective", "gtopk"]) == 0
    out = capsys.readouterr().out
    assert "workers=2" in out and "gtopk" in out and "overhead" in out


def test_unknown_model_is_named() -> None:
    with pytest.raises(ValueError, match=r"model must be one of .*; got 'vgg'"):
        measure_step("vgg", ["gtopk"], 0.01, 2, 1)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--batch", "0"], "--batch: must be an integer >= 1; got '0'"),
        (["--workers", "x"], "--workers: must be an integer >= 1"),
        (["--density", "2"], "--density: must be in (0, 1]"),
        (["--model", "vgg16"], "--model: invalid choice"),
    ],
)
def test_bad_arguments(args: list[str], text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", "step", *args])
    assert info.value.code == 2
    assert text in capsys.readouterr().err
