"""Data sets for the experiments and each worker's shard of them.

    bundle = load_dataset("mnist", "/path/to/mnist")          # registry DATASETS
    part   = shard(bundle.train, rank, world, seed)            # disjoint, same size per rank
    data   = batchify(bundle.train, 20)                        # language: (T, B) token ids

See docs/data.md for every loader, the folder layouts they expect and the normalisation.
"""

from sparsgd.data.bundle import TASKS, DatasetBundle, Split, Task, split_size
from sparsgd.data.files import DATA_ENV, DataFileError
from sparsgd.data.lm_batches import batchify, bptt_batch, bptt_starts
from sparsgd.data.registry import DATASETS, DatasetEntry, LoadOptions, load_dataset
from sparsgd.data.shard import shard, shard_bounds, shard_indices
from sparsgd.data.vocabulary import EOS, UNK, Vocabulary

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "EOS",
    "TASKS",
    "UNK",
    "DataFileError",
    "DatasetBundle",
    "DatasetEntry",
    "LoadOptions",
    "Split",
    "Task",
    "Vocabulary",
    "batchify",
    "bptt_batch",
    "bptt_starts",
    "load_dataset",
    "shard",
    "shard_bounds",
    "shard_indices",
    "split_size",
]
