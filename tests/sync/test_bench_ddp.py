"""``sparsgd bench ddp``: its JSON contract and its argument checks (never its timings)."""

from __future__ import annotations

import json

import pytest

from sparsgd.bench.ddp import VARIANTS
from sparsgd.cli.main import main

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(300), pytest.mark.slow]


def test_bench_ddp_json_has_every_variant_and_counts_collectives(capsys):
    args = ["--width", "32", "--layers", "3", "--bucket-mb", "0.002", "--repeats", "2"]
    assert main(["bench", "ddp", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {row["variant"]: row for row in out["rows"]}
    assert list(rows) == list(VARIANTS) and len(out["load"]) == 3
    assert rows["allreduce"]["ratio_to_allreduce"] == 1.0
    assert all(row["step_ms"] > 0 and row["cpu_ms"] > 0 for row in rows.values())
    assert rows["sparse_one_bucket"]["collectives_per_step"] == 1.0
    assert rows["sparse_many"]["collectives_per_step"] > 1.0
    assert (
        rows["sparse_many_inline"]["collectives_per_step"]
        == (rows["sparse_many"]["collectives_per_step"])
    )
    assert rows["sparse_model_scope"]["collectives_per_step"] == 1.0
    phases = ("select_ms", "comm_ms", "apply_ms")
    for name in ("allreduce", "powersgd"):  # not sparsgd's hook: no collective of its own
        assert all(rows[name][phase] == 0.0 for phase in phases)
    for name in VARIANTS[2:]:  # every sparse hook selects, waits on the wire and applies
        assert all(rows[name][phase] > 0 for phase in phases), rows[name]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--density", "1.5"], "must be in (0, 1]"),
        (["--repeats", "0"], "--repeats: must be an integer >= 1; got '0'"),
    ],
)
def test_bench_ddp_refuses_bad_arguments(args, message, capsys):
    with pytest.raises(SystemExit):
        main(["bench", "ddp", *args])
    assert message in capsys.readouterr().err
