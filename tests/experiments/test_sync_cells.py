"""A study's cell: its spec (the resolved config under its recipe) and its small result."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from sparsgd.experiments.cells import CellStore, cell_key
from sparsgd.experiments.sync_cells import CURVES, NOT_IN_SPEC, SyncCell, run_cell
from sparsgd.experiments.sync_tasks import SyncTask, mnist_task

TASK = SyncTask("FNN-3 / digits", "fnn3", "digits", epochs=2, lr=0.05, hidden_size=16)
DOCS_CELLS = Path(__file__).parents[2] / "docs" / "study_results" / "gtopk-density" / "cells"
SMALL_FILE = 4000  # bytes: a cell file holds a few numbers per evaluation, never tensors


def test_the_spec_is_the_resolved_config_and_follows_the_recipe():
    cell = SyncCell(TASK, "gtopk", 0.01, "authors", 0, 2)
    spec = cell.spec()
    assert spec["engine"] == "sim" and spec == cell.spec()
    assert not set(NOT_IN_SPEC) & set(spec["config"])
    assert spec["config"]["momentum"] == cell.config().momentum
    other = SyncCell(TASK, "gtopk", 0.01, "momentum-free", 0, 2).spec()
    assert other["config"] != spec["config"]  # the recipe changed the run
    assert SyncCell(TASK, "gtopk", 0.01, "authors", 1, 2).spec() != spec  # and so does the seed


def test_a_cell_without_the_density_warm_up_differs_in_that_field_only():
    with_it = SyncCell(TASK, "gtopk", 0.001, "momentum-free", 0, 2)
    without = SyncCell(TASK, "gtopk", 0.001, "momentum-free", 0, 2, density_warmup=False)
    assert with_it.config().density_warmup == 1.0  # the recipe's first epoch at 0.004
    assert without.config().density_warmup == 0.0
    a, b = with_it.spec()["config"], without.spec()["config"]
    assert {key for key in a if a[key] != b[key]} == {"density_warmup"}
    assert without.name != with_it.name and without.name.endswith("-nodw-s0")
    assert with_it.arm_recipe == "momentum-free"
    assert without.arm_recipe == "momentum-free, rho from step 1"
    # the default leaves specs as they were: a committed cell of the density study still
    # matches the spec its cell builds now, so that study resumes instead of running again
    committed = DOCS_CELLS / "lenet5-mnist-gtopk-0.0001-momentum-free-s1.json"
    stored = json.loads(committed.read_text())
    again = SyncCell(
        mnist_task("LeNet-5 / MNIST", "lenet5"), "gtopk", 0.0001, "momentum-free", 1, 4
    )
    assert again.name == stored["name"] and cell_key(again.spec()) == stored["key"]


def test_a_cell_runs_once_and_its_file_is_small(tmp_path):
    cell = SyncCell(TASK, "gtopk", 0.01, "momentum-free", 0, 2)
    store = CellStore(tmp_path)
    run = functools.partial(run_cell, data_dir=None)
    (result,) = store.run_all([(cell.name, cell.spec())], run).values()
    assert result["outcome"] in ("ok", "chance") and result["engine"] == "sim"
    curves = result["curves"]
    assert set(curves) == set(CURVES)
    assert curves["epoch"] == [1.0, 2.0]
    assert all(len(values) == 2 for values in curves.values())
    assert curves["test_accuracy"][-1] == result["final"]["test_accuracy"]
    assert (
        curves["bytes_sent"][-1] == result["final"]["bytes_sent"] < result["final"]["dense_bytes"]
    )
    assert curves["steps_k_over_d"][0] < curves["steps_k_over_d"][1]
    path = store.path(cell.name)
    assert path.stat().st_size < SMALL_FILE
    assert json.loads(path.read_text())["result"] == result
    again = store.run_all([(cell.name, cell.spec())], run)
    assert store.last_rate.ran == 0 and again[cell.name] == result
