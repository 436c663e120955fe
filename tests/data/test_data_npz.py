"""``--dataset npz``: a user's arrays in one .npz file, every malformed file refused with the
file, the array and the reason, and a one-epoch run on a tiny file made here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsgd.cli.main import main
from sparsgd.data import DataFileError, load_dataset


def arrays(n_train: int = 40, n_test: int = 12, features: int = 6, seed: int = 0) -> dict:
    """Two separable classes: the label is the sign of the first feature."""
    rng = np.random.default_rng(seed)
    x_train = rng.normal(size=(n_train, features)).astype(np.float64)
    x_test = rng.normal(size=(n_test, features)).astype(np.float32)
    return {
        "x_train": x_train,
        "y_train": (x_train[:, 0] > 0).astype(np.int64),
        "x_test": x_test,
        "y_test": (x_test[:, 0] > 0).astype(np.uint8),
    }


def write(path: Path, **arrays_: np.ndarray) -> Path:
    np.savez(path, **arrays_)
    return path


def test_loads_shapes_dtypes_and_classes(tmp_path):
    good = arrays()
    bundle = load_dataset("npz", data_file=write(tmp_path / "good.npz", **good))
    x, y = bundle.train.tensors
    assert bundle.task == "classification" and bundle.name == "npz"
    assert bundle.num_classes == 2 and bundle.input_shape == (6,)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.shape == (40, 6) and len(bundle.test) == 12
    torch.testing.assert_close(x, torch.from_numpy(good["x_train"].astype(np.float32)))
    assert torch.equal(y, torch.from_numpy(good["y_train"]))


def test_num_classes_array_widens_the_label_range(tmp_path):
    path = write(tmp_path / "c.npz", **arrays(), num_classes=np.array(5))
    assert load_dataset("npz", data_file=path).num_classes == 5


def _without(key: str) -> dict:
    return {k: v for k, v in arrays().items() if k != key}


def _with(**changes: np.ndarray) -> dict:
    return {**arrays(), **changes}


BAD_LABELS = np.array([0, 1, -1] + [0] * 37)
NAN_FEATURES = np.where(np.arange(40)[:, None] == 7, np.nan, arrays()["x_train"])
MALFORMED = {
    "missing key": (_without("y_test"), "array 'y_test' is missing; the file holds"),
    "x with 1 dim": (_with(x_train=np.zeros(40)), "array 'x_train' has 1 dims; expected at least"),
    "y with 2 dims": (
        _with(y_train=np.zeros((40, 1), dtype=np.int64)),
        "array 'y_train' has 2 dims; expected 1 (one label per sample)",
    ),
    "negative label": (_with(y_train=BAD_LABELS), "'y_train' holds label -1 outside [0, 2)"),
    "label >= num_classes": (
        _with(y_test=np.full(12, 3), num_classes=np.array(3)),
        "'y_test' holds label 3 outside [0, 3)",
    ),
    "non-finite features": (
        _with(x_train=NAN_FEATURES),
        "array 'x_train' holds NaN or infinity (first in sample 7)",
    ),
    "mismatched lengths": (
        _with(y_test=np.zeros(11, dtype=np.int64)),
        "array 'y_test' has 11 labels but 'x_test' has 12 samples",
    ),
    "test shape differs": (
        _with(x_test=np.zeros((12, 5))),
        "x_test samples have shape (5,); x_train's have (6,)",
    ),
    "float labels": (
        _with(y_train=np.zeros(40)),
        "array 'y_train' has dtype float64; expected integer labels",
    ),
    "one class": (
        _with(y_train=np.zeros(40, dtype=np.int64), y_test=np.zeros(12, dtype=np.int64)),
        "the labels name 1 class; expected at least 2",
    ),
    "empty split": (
        _with(x_test=np.zeros((0, 6)), y_test=np.zeros(0, dtype=np.int64)),
        "array 'x_test' holds no samples",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_refused_naming_array_and_reason(tmp_path, case):
    contents, message = MALFORMED[case]
    path = write(tmp_path / "bad.npz", **contents)
    with pytest.raises(DataFileError) as info:
        load_dataset("npz", data_file=path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_or_unreadable_file_and_no_file_at_all(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        load_dataset("npz", data_file=tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("not a zip archive")
    with pytest.raises(DataFileError, match=r"not a readable \.npz file"):
        load_dataset("npz", data_file=tmp_path / "text.npz")
    with pytest.raises(ValueError, match="dataset npz needs data_file"):
        load_dataset("npz")
    with pytest.raises(ValueError, match="digits does not use data_file"):
        load_dataset("digits", data_file=tmp_path / "absent.npz")


def test_cli_refuses_a_malformed_file_before_any_process(tmp_path, capsys):
    path = write(tmp_path / "bad.npz", **_with(y_train=BAD_LABELS))
    args = ["train", "--dataset", "npz", "--data-file", str(path)]
    assert main([*args, "--out", str(tmp_path / "r")]) == 2
    assert "'y_train' holds label -1 outside [0, 2)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before the run folder was made


def test_cli_async_modes_refuse_data_file(tmp_path, capsys):
    path = write(tmp_path / "good.npz", **arrays())
    args = ["train", "--mode", "sim", "--dataset", "npz", "--data-file", str(path)]
    assert main([*args, "--out", str(tmp_path / "r")]) == 2
    assert "--data-file applies to --mode sync only" in capsys.readouterr().err


@pytest.mark.multiprocess
def test_one_epoch_on_a_tiny_npz(tmp_path, capsys, monkeypatch):
    # the command's code in this process (its two ranks are processes of their own); the
    # command as a fresh process is tested end to end in tests/cli (tests/conftest.py)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    path = write(tmp_path / "tiny.npz", **arrays())
    out = tmp_path / "run"
    argv = ["train", "--dataset", "npz", "--data-file", str(path), "--model", "logreg"]
    argv += ["--workers", "2", "--epochs", "1", "--batch-size", "4", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "npz" and summary["num_classes"] == 2
    assert summary["epochs"] == pytest.approx(1.0)
    assert summary["outcome"] in ("ok", "chance", "diverged")
    assert 0 < summary["train_seconds"] <= summary["total_seconds"]
    time_line, outcome_line = capsys.readouterr().out.strip().splitlines()[-2:]
    assert time_line.startswith("time: ") and " s training, " in time_line
    assert outcome_line == f"outcome: {summary['outcome']} ({summary['outcome_reason']})"
