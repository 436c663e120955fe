"""A real asynchronous run resumed from a checkpoint taken mid-run (issue 13, item 7, the part
delivered): the workers' residuals cannot come back (new worker processes start with e = 0),
so the resume records, in log.jsonl and summary.json, the norm of every residual it drops."""

from __future__ import annotations

import pytest

from sparsgd.cli.main import main
from sparsgd.runs import RunDir, load_checkpoint

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(240)]

SMALL = ["--model", "logreg", "--dataset", "synthetic", "--batch-size", "16", "--lr", "0.1"]


def test_a_mid_run_resume_records_the_residuals_it_drops(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--mode", "async", *SMALL, "--workers", "2", "--steps", "20"]
    assert main([*argv, "--density", "0.1", "--checkpoint-every", "4", "--out", str(out)]) == 0
    run = RunDir(out, resume=True)
    # keep the newest checkpoint taken while both workers still ran: what a crash leaves
    saved = [(p, load_checkpoint(p)) for p in run.checkpoints()]
    mid = [i for i, (_, ck) in enumerate(saved) if not ck["retired"]]
    assert mid, "no checkpoint was taken mid-run"
    path, checkpoint = saved[mid[-1]]
    for later, _ in saved[mid[-1] + 1 :]:
        later.unlink()
    expected = [float(n) for n in checkpoint["recorder"]["residual_norm"]]
    assert all(n > 0 for n in expected)  # top-k with density 0.1 leaves a residual

    assert main(["train", "--mode", "async", "--resume", str(out), "--steps", "30"]) == 0
    summary = run.read_summary()
    (record,) = summary["resumes"]
    assert record["step"] == checkpoint["server"]["version"]
    assert record["checkpoint"] == path.name
    assert record["dropped_residual_norm"] == expected
    logged = [r for r in run.read_log() if r["kind"] == "resume"]
    assert logged == [{"kind": "resume", **record}]
