"""The cell store: a study resumes from its finished cells and reruns a cell whose spec changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparsgd.experiments.cells import CellStore, cell_key

CELLS = [("a-s0", {"lr": 0.1, "seed": 0}), ("a-s1", {"lr": 0.1, "seed": 1})]


def test_key_ignores_key_order_and_sees_values() -> None:
    assert cell_key({"a": 1, "b": 2}) == cell_key({"b": 2, "a": 1})
    assert cell_key({"a": 1}) != cell_key({"a": 2})


def test_stored_cells_are_not_run_again(tmp_path) -> None:
    store = CellStore(tmp_path)
    calls: list[dict] = []

    def run(spec: dict) -> dict:
        calls.append(spec)
        return {"acc": spec["seed"] + 0.5}

    first = store.run_all(CELLS, run)
    assert first == {"a-s0": {"acc": 0.5}, "a-s1": {"acc": 1.5}}
    assert len(calls) == 2 and store.last_rate is not None and store.last_rate.ran == 2
    again = store.run_all(CELLS, run)
    assert again == first and len(calls) == 2
    assert store.last_rate.ran == 0 and store.last_rate.reused == 2
    record = json.loads((tmp_path / "cells" / "a-s0.json").read_text())
    assert record["spec"] == CELLS[0][1] and record["key"] == cell_key(CELLS[0][1])


def test_a_changed_spec_runs_again(tmp_path) -> None:
    store = CellStore(tmp_path)
    store.run_all(CELLS, lambda spec: {"lr": spec["lr"]})
    changed = [("a-s0", {"lr": 0.2, "seed": 0}), CELLS[1]]
    results = store.run_all(changed, lambda spec: {"lr": spec["lr"] * 10})
    assert results["a-s0"] == {"lr": 2.0}  # rerun with the new spec
    assert results["a-s1"] == {"lr": 0.1}  # kept


def test_an_interrupted_study_keeps_what_finished(tmp_path) -> None:
    store = CellStore(tmp_path)

    def run(spec: dict) -> dict:
        if spec["seed"] == 1:
            raise KeyboardInterrupt
        return {"ok": True}

    with pytest.raises(KeyboardInterrupt):
        store.run_all(CELLS, run)
    assert store.get("a-s0", CELLS[0][1]) == {"ok": True}
    assert store.get("a-s1", CELLS[1][1]) is None


@pytest.mark.slow
def test_a_pool_of_processes_gives_the_same_results(tmp_path) -> None:
    # dict is a picklable module-level callable: the result is a copy of the spec
    results = CellStore(tmp_path).run_all(CELLS, dict, workers=2)
    assert results == {name: spec for name, spec in CELLS}


@pytest.mark.parametrize("workers", [0, 1.5, True])
def test_bad_worker_counts_are_refused(tmp_path, workers) -> None:
    with pytest.raises(ValueError, match="workers"):
        CellStore(tmp_path).run_all(CELLS, dict, workers=workers)


def test_duplicate_names_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="unique"):
        CellStore(tmp_path).run_all([CELLS[0], CELLS[0]], dict)


def _children(pid: int) -> set[int]:
    """Pids whose parent is ``pid`` (read from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(120)
def test_sigterm_to_the_study_stops_its_pool(tmp_path) -> None:
    # two cells that would sleep a minute each, in a pool of 2; SIGTERM to the study's process
    script = (
        "import time\n"
        "from sparsgd.experiments.cells import CellStore\n"
        f"CellStore({str(tmp_path)!r}).run_all([('a', 60.0), ('b', 61.0)], time.sleep, workers=2)\n"
    )
    study = subprocess.Popen([sys.executable, "-c", script])
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:  # the pool's 2 processes
            time.sleep(0.2)
            workers = _children(study.pid) - {study.pid}
        assert len(workers) >= 2, "the pool never started"
        time.sleep(1.0)  # let them take their cells
        study.send_signal(signal.SIGTERM)
        assert study.wait(timeout=30) != 0
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if _alive(pid)], "pool processes outlived the study"
    finally:
        if study.poll() is None:
            study.kill()
            study.wait(timeout=10)
        for pid in workers:  # a failed run leaves none of its sleepers behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
