"""Loading the experiments' data: a folder only where the data set reads one.

``digits`` and ``synthetic`` are embedded or generated (the smoke sizes use them, so the tests
need no files); ``mnist`` and ``fashion-mnist`` are read from ``data_dir`` or, when it is None,
from ``$SPARSGD_DATA/<name>`` (see docs/data.md).
"""

from __future__ import annotations

from sparsgd.data import DATASETS, DatasetBundle, load_dataset

__all__ = ["data_dir_for", "load_bundle"]


def data_dir_for(dataset: str, data_dir: str | None) -> str | None:
    """``data_dir`` if ``dataset`` reads a folder, else None (the registry refuses one)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}; got {dataset!r}")
    return data_dir if "data_dir" in DATASETS[dataset].options else None


def load_bundle(dataset: str, data_dir: str | None, seed: int = 0) -> DatasetBundle:
    """The data set ``dataset`` (the folder passed on only where it is read)."""
    return load_dataset(dataset, data_dir_for(dataset, data_dir), seed=seed)
