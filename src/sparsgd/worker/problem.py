"""Which model learns which data: a small picklable description every process loads itself.

    problem = Problem("logreg", "digits", seed=0)
    bundle  = problem.load()                          # sparsgd.data registry
    model   = problem.build_model(bundle)             # same parameters in every process
    X, y    = problem.worker_data(bundle, w, W)       # worker w's shard (sparsgd.data.shard)
    X, y    = problem.test_data(bundle)

Passing the description instead of tensors keeps what a spawned process receives small, and
gives every process the same model from the same seed (no broadcast needed). The asynchronous
trainers handle classification data sets; a language data set is refused with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from sparsgd.data import DatasetBundle, load_dataset, shard
from sparsgd.models import ModelSpec, build_model
from sparsgd.worker.flat_model import FlatModel

__all__ = ["Problem"]


@dataclass(frozen=True)
class Problem:
    """``model`` (sparsgd.models name) on ``dataset`` (sparsgd.data name)."""

    model: str
    dataset: str
    data_dir: str | None = None
    seed: int = 0  # model initialisation, generated data and the sharding permutation
    dataset_options: tuple[tuple[str, Any], ...] = ()  # e.g. (("num_train", 512),)
    hidden_size: int | None = None

    def load(self) -> DatasetBundle:
        options = dict(self.dataset_options)
        if self.dataset in ("synthetic", "synthetic-lm"):
            options.setdefault("seed", self.seed)
        bundle = load_dataset(self.dataset, self.data_dir, **options)
        if bundle.task != "classification":
            raise ValueError(
                f"the asynchronous trainers need a classification data set; "
                f"{self.dataset!r} is a {bundle.task} data set"
            )
        return bundle

    def check(self, workers: int) -> DatasetBundle:
        """The loaded data, after refusing what would only fail later, in another process.

        Catches an unknown or language data set, a missing or corrupt data file, an unknown
        model or one that cannot take this data, and more workers than training samples.
        """
        bundle = self.load()
        self.build_model(bundle)
        if workers > bundle.num_train:
            raise ValueError(
                f"workers must be <= the number of training samples ({bundle.num_train}) so "
                f"that every worker gets data; got workers={workers}"
            )
        return bundle

    def build_model(self, bundle: DatasetBundle) -> FlatModel:
        spec = ModelSpec.of(bundle, hidden_size=self.hidden_size)
        return FlatModel(build_model(self.model, spec, seed=self.seed))

    def worker_data(
        self, bundle: DatasetBundle, worker: int, workers: int
    ) -> tuple[Tensor, Tensor]:
        """Worker ``worker``'s shard (0-based) out of ``workers`` disjoint equal shards."""
        part = shard(bundle.train, worker, workers, self.seed)
        inputs, targets = part.tensors
        return inputs, targets

    def test_data(self, bundle: DatasetBundle) -> tuple[Tensor, Tensor]:
        inputs, targets = bundle.test.tensors
        return inputs, targets

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Problem:
        """The problem :meth:`to_record` wrote."""
        return cls(
            model=record["model"],
            dataset=record["dataset"],
            data_dir=record["data_dir"],
            seed=int(record["seed"]),
            dataset_options=tuple(sorted(record["dataset_options"].items())),
            hidden_size=record["hidden_size"],
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "data_dir": self.data_dir,
            "seed": self.seed,
            "dataset_options": dict(self.dataset_options),
            "hidden_size": self.hidden_size,
        }
