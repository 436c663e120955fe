"""sparsgd.worker: what one worker is, whichever way its gradients are aggregated.

The synchronous trainer (sparsgd.sync) and the parameter server's workers
(sparsgd.asynchronous, and the simulator sparsgd.sim) share:

worker.seeds        one formula for every per-worker random stream
worker.flat_model   the model as one flat vector x (d,): flat gradients, FlatModel, checksum
worker.batches      mini-batches of a worker's shard, resumable to the batch
worker.tasks        loss and test scores per kind of data (classification, language)
worker.problem      which model learns which data, a picklable description
worker.user_problem a user's own nn.Module factory and Datasets, as a Problem

sync/ and asynchronous/ keep only their aggregation and their loop.
"""

from sparsgd.worker.batches import BatchStream, SampleBatches, StreamBatches
from sparsgd.worker.flat_model import (
    FlatModel,
    checksum,
    flat_grad,
    flat_params,
    trainable,
    write_grad_,
)
from sparsgd.worker.problem import Problem
from sparsgd.worker.seeds import derive_seed, generator_for
from sparsgd.worker.tasks import (
    ClassificationTask,
    LanguageTask,
    Scores,
    classification_loss,
    classification_scores,
)
from sparsgd.worker.user_problem import UserProblem

__all__ = [
    "BatchStream",
    "ClassificationTask",
    "FlatModel",
    "LanguageTask",
    "Problem",
    "SampleBatches",
    "Scores",
    "StreamBatches",
    "UserProblem",
    "checksum",
    "classification_loss",
    "classification_scores",
    "derive_seed",
    "flat_grad",
    "flat_params",
    "generator_for",
    "trainable",
    "write_grad_",
]
