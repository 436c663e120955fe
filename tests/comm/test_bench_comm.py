"""``sparsgd bench comm``: launches its own processes, prints the table or a JSON list."""

from __future__ import annotations

import json
import math

import pytest

from sparsgd.cli.main import main
from sparsgd.comm import COLLECTIVES

WORKERS = 2
NUMEL = 3000
DENSITY = 0.01  # k = 30
STATUS_BYTES = 8  # the input check in a gTop-k tree message (the timed calls have no handshake)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(300)
@pytest.mark.parametrize("hand_over", [[], ["--overwrite"]], ids=["copy", "overwrite"])
def test_json_rows_carry_the_measured_bytes_and_ratios(capsys, hand_over):
    # with p handed over (the sync step's call) the bytes and messages are the same
    argv = ["bench", "comm", "--workers", str(WORKERS), "--numel", "3e3", *hand_over]
    argv += ["--density", str(DENSITY), "--repeats", "2", "--json"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["collective"] for r in rows] == list(COLLECTIVES)
    for row in rows:
        assert {"collective", "median_ms", "bytes_sent_per_rank", "ratio_to_dense"} <= set(row)
        assert math.isfinite(row["median_ms"]) and row["median_ms"] > 0
        assert row["select_ms"] <= row["median_ms"]
        assert row["floor_ms"] > 0
        local = row["select_ms"] + row["apply_ms"]
        assert row["local_x_floor"] == pytest.approx(local / row["floor_ms"])
    by_name = {r["collective"]: r for r in rows}
    assert by_name["dense"]["ratio_to_dense"] == 1.0
    k = 30
    # dense: the status element makes d + 1 = 3001 values, ceil(3001 / 2) = 1501 per chunk
    assert by_name["dense"]["bytes_sent_per_rank"] == 2 * (WORKERS - 1) * 1501 * 4
    assert by_name["topk_allgather"]["bytes_sent_per_rank"] == (WORKERS - 1) * (16 + 8 * k)
    assert by_name["gtopk"]["bytes_sent_per_rank"] == STATUS_BYTES + 8 * k  # one message each way
    ring = 2 * (WORKERS - 1)
    expected_messages = {"dense": ring, "topk_allgather": ring, "gtopk": 1, "gtopk_exact": 1 + ring}
    for name, messages in expected_messages.items():  # rank 0: no handshake after the warm-up
        assert by_name[name]["messages_sent"] == by_name[name]["messages_recv"] == messages
    assert math.isfinite(by_name["dense"]["plain_ms"]) and by_name["dense"]["plain_ms"] > 0
    gathered = by_name["topk_allgather"]["plain_ms"]  # a bare all_gather of k entries
    assert math.isfinite(gathered) and gathered > 0
    assert all("plain_ms" not in r for r in rows if r["collective"].startswith("gtopk"))


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--density", "1.5", "--density: must be in (0, 1]; got '1.5'"),
        ("--workers", "0", "--workers: must be an integer >= 1; got '0'"),
        ("--numel", "2.5", "--numel: must be an integer >= 1; got '2.5'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(capsys, flag, value, message):
    argv = {"--workers": "2", "--numel": "100", "--density": "0.1"}
    argv[flag] = value
    with pytest.raises(SystemExit) as info:
        main(["bench", "comm", *[x for pair in argv.items() for x in pair]])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_overwrite_is_refused_on_the_lab_before_any_lab_starts():
    argv = ["bench", "comm", "--workers", "2", "--numel", "1e3", "--density", "0.01"]
    with pytest.raises(SystemExit, match="--overwrite is not available with --lab"):
        main([*argv, "--overwrite", "--lab", "100mbit"])
