"""A user's own classification data: four arrays in one ``.npz`` file.

    sparsgd train --dataset npz --data-file X.npz --model fnn3
    numpy.savez("X.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)

The file holds (``numpy.savez`` or ``savez_compressed``; no pickled objects):

    x_train      (N, *input_shape)  real numbers (float or integer dtype), all finite
    y_train      (N,)               integer labels in [0, C)
    x_test       (M, *input_shape)  the same input_shape as x_train
    y_test       (M,)               integer labels in [0, C)
    num_classes  ()                 optional integer C; without it C = 1 + the largest label

Features are used as they are, converted to float32 (scale or normalise them beforehand);
labels become int64. ``input_shape`` (D,) suits logreg and fnn3, (1, 28, 28) suits lenet5.
Anything else is refused by :class:`~sparsgd.data.files.DataFileError` naming the file, the
array and the reason, e.g. "X.npz: array 'y_train' has 2 dims; expected 1 (one label per
sample)", before a run folder is made or a process started.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from sparsgd.data.bundle import DatasetBundle
from sparsgd.data.files import DataFileError
from sparsgd.data.rank import talk_level

__all__ = ["NPZ_KEYS", "load_npz"]

logger = logging.getLogger(__name__)

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
REMEDY = (
    "Write it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...); "
    "see docs/data.md"
)
FEATURE_KINDS = "fiu"  # float, signed and unsigned integer dtypes
LABEL_KINDS = "iu"


def _read(path: Path) -> dict[str, np.ndarray]:
    """Every array of the file (pickled objects refused)."""
    if not path.is_file():
        raise DataFileError(path, "no such file (data_file)", REMEDY)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataFileError(path, f"not a readable .npz file ({err})", REMEDY) from err


def _check_keys(path: Path, arrays: dict[str, np.ndarray]) -> None:
    missing = [key for key in NPZ_KEYS if key not in arrays]
    if missing:
        raise DataFileError(
            path, f"array {missing[0]!r} is missing; the file holds {sorted(arrays)}", REMEDY
        )


def _check_features(path: Path, name: str, x: np.ndarray) -> None:
    if x.dtype.kind not in FEATURE_KINDS:
        raise DataFileError(path, f"array {name!r} has dtype {x.dtype}; expected numbers", REMEDY)
    if x.ndim < 2:
        raise DataFileError(
            path, f"array {name!r} has {x.ndim} dims; expected at least 2 (samples, ...)", REMEDY
        )
    if len(x) == 0:
        raise DataFileError(path, f"array {name!r} holds no samples", REMEDY)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x))[0][0])
        raise DataFileError(
            path, f"array {name!r} holds NaN or infinity (first in sample {bad})", REMEDY
        )


def _check_labels(path: Path, name: str, y: np.ndarray, samples: int) -> None:
    if y.dtype.kind not in LABEL_KINDS:
        raise DataFileError(
            path, f"array {name!r} has dtype {y.dtype}; expected integer labels", REMEDY
        )
    if y.ndim != 1:
        raise DataFileError(
            path, f"array {name!r} has {y.ndim} dims; expected 1 (one label per sample)", REMEDY
        )
    if len(y) != samples:
        x_name = "x_" + name[2:]
        raise DataFileError(
            path, f"array {name!r} has {len(y)} labels but {x_name!r} has {samples} samples", REMEDY
        )


def _num_classes(path: Path, arrays: dict[str, np.ndarray]) -> int:
    """C: the ``num_classes`` array if given, else 1 + the largest label; labels checked."""
    labels = np.concatenate([arrays["y_train"], arrays["y_test"]])
    given = arrays.get("num_classes")
    if given is not None and (given.shape != () or given.dtype.kind not in LABEL_KINDS):
        raise DataFileError(path, "array 'num_classes' must be one integer", REMEDY)
    classes = int(given) if given is not None else int(labels.max()) + 1
    if classes < 2:
        raise DataFileError(path, f"the labels name {classes} class; expected at least 2", REMEDY)
    for name in ("y_train", "y_test"):
        y = arrays[name]
        outside = (y < 0) | (y >= classes)
        if outside.any():
            raise DataFileError(
                path,
                f"array {name!r} holds label {int(y[outside][0])} outside [0, {classes})",
                REMEDY,
            )
    return classes


def load_npz(data_file: str | Path | None) -> DatasetBundle:
    """The classification bundle of ``data_file`` (layout in the module docstring)."""
    if data_file is None:
        raise ValueError("dataset npz needs data_file (--data-file X.npz); got none")
    path = Path(data_file).expanduser()
    arrays = _read(path)
    _check_keys(path, arrays)
    for split in ("train", "test"):
        _check_features(path, f"x_{split}", arrays[f"x_{split}"])
        _check_labels(path, f"y_{split}", arrays[f"y_{split}"], len(arrays[f"x_{split}"]))
    shape, test_shape = arrays["x_train"].shape[1:], arrays["x_test"].shape[1:]
    if shape != test_shape:
        raise DataFileError(
            path, f"x_test samples have shape {test_shape}; x_train's have {shape}", REMEDY
        )
    classes = _num_classes(path, arrays)
    logger.log(talk_level(), "reading npz from %s", path)

    def split(name: str) -> TensorDataset:
        x = torch.from_numpy(arrays[f"x_{name}"].astype(np.float32))  # (N, *input_shape)
        y = torch.from_numpy(arrays[f"y_{name}"].astype(np.int64))  # (N,)
        return TensorDataset(x, y)

    return DatasetBundle(
        name="npz",
        task="classification",
        train=split("train"),
        test=split("test"),
        num_classes=classes,
        input_shape=tuple(int(d) for d in shape),
        source=str(path),
    )
