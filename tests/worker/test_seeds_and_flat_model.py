"""One seed formula for every stream; FlatModel's gradient and scores are the tasks' own."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from sparsgd.models import ModelSpec, build_model
from sparsgd.worker import (
    BatchStream,
    ClassificationTask,
    FlatModel,
    checksum,
    derive_seed,
    flat_grad,
    generator_for,
    trainable,
)

CPU = torch.device("cpu")


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "worker", 1) == derive_seed(0, "worker", 1)
    seeds = {derive_seed(s, "worker", w) for s in range(3) for w in range(30)}
    assert len(seeds) == 90
    assert min(seeds) >= 0 and max(seeds) < 2**63
    # the synchronous trainer's streams (purpose, rank) and the server's paths share the formula
    assert derive_seed(0, "data-order", 1) != derive_seed(0, "selection", 1)
    a = torch.rand(3, generator=generator_for(5, "x"))
    assert torch.equal(a, torch.rand(3, generator=generator_for(5, "x")))


def _model_and_data():
    spec = ModelSpec(input_shape=(4,), num_classes=3)
    module = build_model("logreg", spec, seed=0)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(25, 4, generator=gen), torch.randint(0, 3, (25,), generator=gen)
    return module, x, y


def test_flat_model_gradient_and_scores_equal_the_classification_task():
    module, x, y = _model_and_data()
    flat = FlatModel(module)
    x0 = flat.flat()
    g, loss = flat.gradient(x0, x, y, seed=0)
    task = ClassificationTask(TensorDataset(x, y), 0, 1, CPU)
    module.zero_grad(set_to_none=True)
    reference = task.loss(module, (x, y))
    reference.backward()
    assert torch.equal(g, flat_grad(trainable(module))) and loss == float(reference.detach())
    accuracy, test_loss = flat.evaluate(x0, x, y)
    metrics = task.metrics(*task.scores(module))
    assert (accuracy, test_loss) == (metrics["test_accuracy"], metrics["test_loss"])
    assert checksum(flat.flat()) == checksum(x0)


def test_batch_stream_covers_each_sample_once_per_epoch_and_resumes():
    stream = BatchStream(10, 3, generator_for(0, "worker", 0, "batches"))
    epoch = torch.cat([stream.next() for _ in range(3)])  # floor(10 / 3) batches
    assert len(set(epoch.tolist())) == 9
    saved = stream.state_dict()
    ahead = [stream.next() for _ in range(5)]
    again = BatchStream(10, 3, torch.Generator())
    again.load_state_dict(saved)
    assert all(torch.equal(a, again.next()) for a in ahead)
    assert stream.epochs_done == again.epochs_done == 2
