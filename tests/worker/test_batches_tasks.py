"""Mini-batches (each sample once per epoch, resumable) and P-independent test scores."""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset

from sparsgd.models import ModelSpec, build_model
from sparsgd.worker.batches import (
    SampleBatches,
    StreamBatches,
    sample_steps_per_epoch,
    stream_steps_per_epoch,
)
from sparsgd.worker.flat_model import flat_grad, trainable, write_grad_
from sparsgd.worker.tasks import ClassificationTask, LanguageTask

CPU = torch.device("cpu")
# the same sums split into parts and added in another order: a float64-accumulated sum of
# float32 per-part losses differs only by roundings
SUM_TOL = 1e-5


def test_sample_batches_cover_the_shard_once_per_epoch_and_resume():
    x = torch.arange(10.0).unsqueeze(1)
    shard = TensorDataset(x, torch.arange(10))
    steps = sample_steps_per_epoch(10, 4)
    assert steps == 3
    batches = SampleBatches(shard, 4, steps, torch.Generator().manual_seed(1))
    batches.start_epoch()
    seen = torch.cat([batches.next_batch()[1] for _ in range(steps)])
    assert sorted(seen.tolist()) == list(range(10))
    batches.start_epoch()
    batches.next_batch()
    state = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batches.state_dict().items()}
    expected = [batches.next_batch()[1] for _ in range(2)]
    batches.start_epoch()  # move on, then restore
    batches.load_state_dict(state)
    assert all(torch.equal(a, batches.next_batch()[1]) for a in expected)


def test_stream_batches_walk_bptt_windows():
    piece = torch.arange(41)
    steps = stream_steps_per_epoch(41, 4, 3)  # (10, 4): 9 targets per column, 3 windows
    assert steps == 3
    batches = StreamBatches(piece, 4, 3, steps)
    batches.start_epoch()
    windows = [batches.next_batch() for _ in range(steps)]
    assert [w[0].shape[0] for w in windows] == [3, 3, 3]
    assert torch.equal(windows[0][1], windows[0][0] + 1)  # targets are the next tokens


def test_classification_scores_add_up_over_ranks():
    model = build_model("logreg", ModelSpec(input_shape=(5,), num_classes=3), seed=0)
    gen = torch.Generator().manual_seed(0)
    test = TensorDataset(
        torch.randn(23, 5, generator=gen), torch.randint(0, 3, (23,), generator=gen)
    )
    whole = ClassificationTask(test, 0, 1, CPU).scores(model)
    parts = [ClassificationTask(test, r, 3, CPU).scores(model) for r in range(3)]
    assert sum(p[2] for p in parts) == whole[2] == 23
    assert sum(p[1] for p in parts) == whole[1]
    assert math.isclose(sum(p[0] for p in parts), whole[0], rel_tol=SUM_TOL)


def test_language_scores_do_not_depend_on_world_size():
    model = build_model("lstm", ModelSpec(vocab_size=11, hidden_size=8, dropout=0.0), seed=0)
    model.eval()
    test = torch.randint(0, 11, (403,), generator=torch.Generator().manual_seed(0))
    whole = LanguageTask(test, 0, 1, 7, CPU).scores(model)
    for world in (2, 3, 12):  # 12 > EVAL_COLUMNS: some ranks score nothing
        parts = [LanguageTask(test, r, world, 7, CPU).scores(model) for r in range(world)]
        assert sum(p[2] for p in parts) == whole[2] == (403 // 10 - 1) * 10
        assert math.isclose(sum(p[0] for p in parts), whole[0], rel_tol=SUM_TOL)


def test_flat_grad_round_trip_and_missing_grads():
    model = build_model("fnn3", ModelSpec(input_shape=(4,), num_classes=2, hidden_size=3), seed=0)
    params = trainable(model)
    d = sum(p.numel() for p in params)
    assert torch.equal(flat_grad(params), torch.zeros(d))  # no backward yet: zeros
    flat = torch.arange(d, dtype=torch.float32)
    write_grad_(params, flat)
    assert torch.equal(flat_grad(params), flat)
    assert torch.equal(params[0].grad.reshape(-1), flat[: params[0].numel()])
